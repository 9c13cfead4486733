import { OnWorkerEvent } from '@nestjs/bullmq';
import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import type { Job } from 'bullmq';
import { EngineRegistry } from '../../engines/engine-registry.js';
import { TempWorkspaceService } from '../../storage/temp-workspace.service.js';
import { JobCancellation } from '../cancellation.js';
import { CatalogWorkerHost } from '../catalog-worker-host.js';
import { chunkPlace } from '../failure.js';
import { ChunkJobName, engineForAttempt, type ChunkJobData, type ChunkJobResult } from '../job-catalog.js';
import { JobLifecycle } from '../job-lifecycle.service.js';
import { TranscriptionQueue } from '../transcription.queue.js';
import { WORKER_ID } from '../worker-id.js';
import { chunkJobId } from './chunk-queues.js';
import { LongAudioPipeline } from './long-audio.pipeline.js';

/**
 * Worker of one engine's chunk queue (`chunks-<engine>`; TranscriptionModule binds one subclass
 * per enabled engine with boundProcessor). One attempt of one piece: fetch its WAV, call the
 * engine, delete the piece's object. A failure is recorded on the parent job; a final one ends
 * it (BullMQ then fails the parent, failParentOnFailure) and removes the job's stored pieces.
 */
@Injectable()
export abstract class ChunkProcessor extends CatalogWorkerHost implements OnApplicationBootstrap {
  readonly handles = [ChunkJobName.TranscribeChunk] as const;

  constructor(
    private readonly engines: EngineRegistry,
    private readonly pipeline: LongAudioPipeline,
    private readonly workspaces: TempWorkspaceService,
    private readonly lifecycle: JobLifecycle,
    private readonly queue: TranscriptionQueue,
    private readonly cancellation: JobCancellation,
  ) {
    super();
  }

  /** DELETE of a running job: abort its pieces that this process runs (the engine calls are killed). */
  async onApplicationBootstrap(): Promise<void> {
    await this.cancellation.subscribe(({ jobId, pieces }) => {
      for (let i = 0; i < pieces; i++) this.worker.cancelJob(chunkJobId(jobId, i), 'job cancelled');
    });
  }

  protected async handle(job: Job<ChunkJobData, ChunkJobResult>, _token: string | undefined, signal: AbortSignal): Promise<ChunkJobResult> {
    const { data } = job;
    const ref = { jobId: data.parentJobId, attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1, signal };
    const workspace = await this.workspaces.create(job.id!);
    try {
      const engine = this.engines.get(engineForAttempt(data, ref.attempt));
      const file = workspace.file('piece.wav');
      await this.pipeline.fetchPiece(data.audioKey, file);
      const result = await engine.transcribe({ path: file, duration_sec: data.durationSec, max_volume_db: data.maxVolumeDb }, data.options, { signal });
      await this.pipeline.removePiece(data.audioKey);
      return { index: data.piece.index, result };
    } catch (err) {
      const failure = await this.lifecycle.attemptFailed(ref, data, err, chunkPlace(data));
      // The last attempt of a piece fails the whole job (BullMQ fails the parent without running it): clean up here.
      if (!failure.retryable || ref.attempt >= ref.maxAttempts) await this.pipeline.removeChunkObjects(data.parentJobId);
      throw failure;
    } finally {
      await workspace.dispose();
    }
  }

  /** After each finished piece: publish the parent's progress (10–90 %, pieces done / total). */
  @OnWorkerEvent('completed')
  async onCompleted(job: Job<ChunkJobData, ChunkJobResult>): Promise<void> {
    const { parentJobId, total } = job.data;
    try {
      const done = Math.min(await this.queue.childrenDone(parentJobId), total);
      await this.queue.updateProgress(parentJobId, {
        progress: Math.floor(10 + (80 * done) / total),
        stage: 'transcribing',
        chunks_done: done,
        chunks_total: total,
        worker_id: WORKER_ID,
        message: `${done} of ${total} chunks transcribed`,
      });
    } catch (err) {
      this.logger.warn(`progress update of job ${parentJobId} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
