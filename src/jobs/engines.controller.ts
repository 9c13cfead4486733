import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiKeyLabel } from '../auth/api-key.guard.js';
import { AppConfig } from '../config/app-config.js';
import { EngineHealthService } from '../engines/engine-health.service.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import { QueueBacklog, type BacklogRow } from '../transcription/queue-backlog.js';
import { EnginesSchema } from './dto/openapi.js';

/** `GET /api/transcribe/jobs/engines`: enabled engines, their live availability and capabilities. */
@ApiTags('jobs')
@Controller('api/transcribe/jobs')
export class EnginesController {
  constructor(
    private readonly registry: EngineRegistry,
    private readonly health: EngineHealthService,
    private readonly config: AppConfig,
    private readonly backlog: QueueBacklog,
  ) {}

  /**
   * Every enabled engine with its cached availability (periodic probes; never waits on an engine)
   * and capabilities, and what waits for it (`queue`: jobs and chunks waiting and the oldest wait
   * in seconds, over every key; `by_key` holds the same for the caller's own key only, since other
   * teams' key labels and backlogs are theirs (operators see every key in /metrics); null when
   * Redis does not answer within 1 s):
   * `{engines: {<id>: {engine, display_name, available, message, checked_at, …capabilities, queue}}, default_engine}`.
   * @param keyLabel the caller's key label (ApiKeyLabel: the 8-character hash of its key).
   */
  @ApiOperation({ summary: 'Enabled engines with cached availability, capabilities and queue backlog' })
  @ApiOkResponse({ type: EnginesSchema })
  @Get('engines')
  async engines(@ApiKeyLabel() keyLabel: string): Promise<{ engines: Record<string, Record<string, unknown>>; default_engine: string }> {
    const backlog = await this.readBacklog();
    const engines: Record<string, Record<string, unknown>> = {};
    for (const engine of this.registry.all()) {
      const state = this.health.state(engine.id);
      engines[engine.id] = {
        engine: engine.id,
        display_name: engine.displayName,
        available: state.available,
        message: state.message ?? null,
        checked_at: state.checked_at,
        details: state.details ?? {},
        ...engine.capabilities,
        // With vad_filter on (the default), this engine is sent speech only; whole-file engines hear everything (and are guarded).
        speech_only: !engine.capabilities.whole_file,
        queue: backlog ? engineQueue(backlog.rows.filter((r) => r.engine === engine.id), backlog.truncated, keyLabel) : null,
      };
    }
    return { engines, default_engine: EngineRegistry.canonicalId(this.config.DEFAULT_TRANSCRIPTION_ENGINE) };
  }

  /** The backlog, or null when Redis does not answer within 1 s (the engine list must not hang on it). */
  private async readBacklog(): Promise<{ rows: BacklogRow[]; truncated: boolean } | null> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.backlog.rows(),
        new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), 1000); }),
      ]);
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
    }
  }
}

interface QueueGroup { waiting_jobs: number; waiting_chunks: number; oldest_wait_sec: number | null }

/** One engine's backlog rows folded into totals (every key) and the group of `ownKey` (by_key). */
function engineQueue(rows: BacklogRow[], truncated: boolean, ownKey: string): QueueGroup & { by_key: Record<string, QueueGroup>; truncated: boolean } {
  const fold = (group: QueueGroup, row: BacklogRow) => {
    if (row.kind === 'chunks') group.waiting_chunks += row.waiting;
    else group.waiting_jobs += row.waiting;
    if (row.oldest_wait_sec !== null) group.oldest_wait_sec = Math.max(group.oldest_wait_sec ?? 0, row.oldest_wait_sec);
  };
  const empty = (): QueueGroup => ({ waiting_jobs: 0, waiting_chunks: 0, oldest_wait_sec: null });
  const total = empty();
  const byKey: Record<string, QueueGroup> = {};
  for (const row of rows) {
    fold(total, row);
    if (row.key === ownKey) fold((byKey[row.key] ??= empty()), row);
  }
  return { ...total, by_key: byKey, truncated };
}
