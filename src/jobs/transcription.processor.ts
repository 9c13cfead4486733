import { Processor, WorkerHost } from '@nestjs/bullmq';
import { type OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { QueueName, type JobProgress, type TranscribeJobResult } from './jobs.constants.js';
import { finalError, type TranscriptionJob } from './transcription.queue.js';
import { JobAttemptError, TranscriptionRunner, WORKER_ID } from './transcription-runner.service.js';

/**
 * BullMQ worker for the transcription queue (worker role only). Thin: it adapts BullMQ's job to a
 * JobAttempt, lets the runner do the work, and turns a non-retryable failure into BullMQ's
 * UnrecoverableError so no further attempts are made.
 */
@Processor(QueueName.Transcription, { name: WORKER_ID })
export class TranscriptionProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly runner: TranscriptionRunner,
    private readonly config: AppConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.WORKER_CONCURRENCY;
  }

  /** BullMQ passes an AbortSignal as third argument (aborted by worker.cancelJob or shutdown). */
  override async process(job: TranscriptionJob, _token?: string, signal?: AbortSignal): Promise<TranscribeJobResult> {
    try {
      return await this.runner.run({
        jobId: job.id!,
        data: job.data,
        attempt: job.attemptsMade + 1,
        maxAttempts: job.opts.attempts ?? 1,
        signal: signal ?? new AbortController().signal,
        reportProgress: (p: JobProgress) => job.updateProgress(p as unknown as object),
      });
    } catch (err) {
      if (err instanceof JobAttemptError && !err.retryable) throw finalError(err.message);
      throw err;
    }
  }
}
