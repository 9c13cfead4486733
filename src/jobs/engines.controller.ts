import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AppConfig } from '../config/app-config.js';
import { EngineHealthService } from '../engines/engine-health.service.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import { EnginesSchema } from './dto/openapi.js';

/** `GET /api/transcribe/jobs/engines`: enabled engines, their live availability and capabilities. */
@ApiTags('jobs')
@Controller('api/transcribe/jobs')
export class EnginesController {
  constructor(
    private readonly registry: EngineRegistry,
    private readonly health: EngineHealthService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Every enabled engine with its cached availability (periodic probes; never waits on an engine)
   * and capabilities: `{engines: {<id>: {engine, display_name, available, message, checked_at, …capabilities}}, default_engine}`.
   */
  @ApiOperation({ summary: 'Enabled engines with cached availability and capabilities' })
  @ApiOkResponse({ type: EnginesSchema })
  @Get('engines')
  engines(): { engines: Record<string, Record<string, unknown>>; default_engine: string } {
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
      };
    }
    return { engines, default_engine: EngineRegistry.canonicalId(this.config.DEFAULT_TRANSCRIPTION_ENGINE) };
  }
}
