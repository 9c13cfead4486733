import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { WaitingChildrenError, type Job } from 'bullmq';
import { JobCancellation } from './cancellation.js';
import { CatalogWorkerHost } from './catalog-worker-host.js';
import {
  parseTranscriptionJobData,
  TranscriptionJobName,
  type ChunkJobResult,
  type JobProgress,
  type MergeStepData,
  type TranscriptionJobData,
  type TranscriptionJobResult,
} from './job-catalog.js';
import { LongAudioPipeline } from './long-audio/long-audio.pipeline.js';
import { TranscriptionService, type TranscriptionAttempt } from './transcription.service.js';
import { WORKER_ID } from './worker-id.js';

type TranscriptionJob = Job<TranscriptionJobData, TranscriptionJobResult>;

/**
 * Worker of the transcription queue (worker role; TranscriptionModule binds it to the queue with
 * the configured lock timings). Thin: it reads the job's step and runs it —
 * `transcribe`: TranscriptionService.transcribe; when the recording was split, the job's data
 *   becomes its `merge` step, its chunk jobs are queued as BullMQ children, and the job waits
 *   for them (WaitingChildrenError) — or merges at once if they are already done;
 * `merge`: TranscriptionService.merge with the children's results.
 */
@Injectable()
export abstract class TranscriptionProcessor extends CatalogWorkerHost implements OnApplicationBootstrap {
  readonly handles = [TranscriptionJobName.Transcribe] as const;

  constructor(
    private readonly service: TranscriptionService,
    private readonly pipeline: LongAudioPipeline,
    private readonly cancellation: JobCancellation,
  ) {
    super();
  }

  async onApplicationBootstrap(): Promise<void> {
    // DELETE on a running job: abort it here if this process runs it (the engine call is killed).
    await this.cancellation.subscribe(({ jobId }) => this.worker.cancelJob(jobId, 'job cancelled'));
  }

  protected async handle(job: TranscriptionJob, token: string | undefined, signal: AbortSignal): Promise<TranscriptionJobResult> {
    const data = parseTranscriptionJobData(job.data);
    const attempt: TranscriptionAttempt = {
      jobId: job.id!,
      attempt: job.attemptsMade + 1,
      maxAttempts: job.opts.attempts ?? 1,
      signal,
      reportProgress: (p: JobProgress) => job.updateProgress(p),
      log: async (line: string) => {
        await job.log(line);
      },
    };
    switch (data.step) {
      case 'merge':
        return this.merge(job, attempt, data);
      case 'transcribe': {
        const outcome = await this.service.transcribe(attempt, data);
        if (outcome.kind === 'completed') return outcome.summary;
        const { merge, chunks } = outcome.plan;
        try {
          // The step is saved before the children exist: a worker that dies in between re-runs the merge step, never the split.
          await job.updateData(merge);
          await this.pipeline.enqueue({ id: job.id!, queue: job.queueQualifiedName }, merge, chunks);
          await attempt.reportProgress({ progress: 10, stage: 'transcribing', chunks_done: 0, chunks_total: chunks.length, worker_id: WORKER_ID, message: `transcribing ${chunks.length} chunks with ${merge.chunkEngine}` });
          if (await job.moveToWaitingChildren(token!)) throw new WaitingChildrenError();
        } catch (err) {
          if (err instanceof WaitingChildrenError) throw err;
          throw await this.service.fail(attempt, merge, err);
        }
        // Every chunk already finished (another worker was quick): merge in this same run.
        return this.merge(job, attempt, merge);
      }
    }
  }

  private async merge(job: TranscriptionJob, attempt: TranscriptionAttempt, data: MergeStepData): Promise<TranscriptionJobResult> {
    const children = Object.values(await job.getChildrenValues<ChunkJobResult>());
    return this.service.merge(attempt, data, children);
  }
}
