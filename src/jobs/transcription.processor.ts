import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { WaitingChildrenError, Worker } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { isDatabaseUnavailable } from '../database/database-errors.js';
import { QueueName, type ChunkJobResult, type JobProgress, type TranscribeJobData, type TranscribeJobResult } from './jobs.constants.js';
import { finalError, type TranscriptionJob } from './transcription.queue.js';
import { JobAttemptError, TranscriptionRunner, WAITING_FOR_CHUNKS } from './transcription-runner.service.js';
import { WORKER_ID } from './worker-id.js';
import { JobCancellation } from './cancellation.js';
import { ChunkWorkers } from './chunk-queues.js';

/**
 * BullMQ worker for the transcription queue (worker role only). Thin: it adapts BullMQ's job to a
 * JobAttempt (including the flow operations of the long-audio pipeline), lets the runner do the
 * work, turns a non-retryable failure into BullMQ's UnrecoverableError, and yields with
 * WaitingChildrenError while chunk jobs run.
 */
/**
 * Lock and stalled-check timings must be given to the decorator, which is evaluated before the
 * validated config exists: read them from the environment here (AppConfig validates the same variables at boot).
 */
const envMs = (name: string, fallback: number) => (/^\d+$/.test(process.env[name] ?? '') ? Number(process.env[name]) : fallback);

@Processor(QueueName.Transcription, {
  name: WORKER_ID,
  lockDuration: envMs('WORKER_LOCK_DURATION_MS', 30_000),
  stalledInterval: envMs('WORKER_STALLED_INTERVAL_MS', 30_000),
})
export class TranscriptionProcessor extends WorkerHost implements OnApplicationBootstrap {
  private readonly logger = new Logger(TranscriptionProcessor.name);

  constructor(
    private readonly runner: TranscriptionRunner,
    private readonly config: AppConfig,
    private readonly cancellation: JobCancellation,
    private readonly chunkWorkers: ChunkWorkers,
  ) {
    super();
  }

  async onApplicationBootstrap(): Promise<void> {
    this.worker.concurrency = this.config.WORKER_CONCURRENCY;
    // DELETE on a running job: abort it here if this process runs it (the engine call is killed).
    await this.cancellation.subscribe(({ jobId, pieces }) => {
      this.worker.cancelJob(jobId, 'job cancelled');
      this.chunkWorkers.cancel(jobId, pieces);
    });
  }

  /** BullMQ passes the lock token and an AbortSignal (aborted by worker.cancelJob or shutdown). */
  override async process(job: TranscriptionJob, token?: string, signal?: AbortSignal): Promise<TranscribeJobResult> {
    let outcome: TranscribeJobResult | typeof WAITING_FOR_CHUNKS;
    try {
      outcome = await this.runner.run({
        jobId: job.id!,
        data: job.data,
        attempt: job.attemptsMade + 1,
        maxAttempts: job.opts.attempts ?? 1,
        signal: signal ?? new AbortController().signal,
        reportProgress: (p: JobProgress) => job.updateProgress(p as unknown as object),
        flow: {
          parent: { id: job.id!, queue: job.queueQualifiedName },
          updateData: (data: TranscribeJobData) => job.updateData(data),
          waitForChildren: () => job.moveToWaitingChildren(token!),
          childResults: async () => Object.values(await job.getChildrenValues<ChunkJobResult>()),
          log: async (line: string) => {
            await job.log(line);
          },
        },
      });
    } catch (err) {
      if (err instanceof JobAttemptError && !err.retryable) throw finalError(err.message);
      if (isDatabaseUnavailable(err)) {
        // Postgres is down: not this job's fault. Retrying on the backoff schedule would spend every
        // attempt within seconds and fail the whole queue during an outage. BullMQ's manual rate
        // limit puts the job back in the queue without spending an attempt and makes this worker
        // wait before it takes another job.
        this.logger.warn(`job ${job.id}: the database is unreachable (${err instanceof Error ? err.message : String(err)}); back to the queue, no attempt spent`, { job_id: job.id });
        await this.worker.rateLimit(Math.max(1000, this.config.JOB_BACKOFF_MS));
        throw Worker.RateLimitError();
      }
      throw err;
    }
    if (outcome === WAITING_FOR_CHUNKS) throw new WaitingChildrenError();
    return outcome;
  }

  /** Connection errors (Redis restarting): logged as JSON lines; without a listener BullMQ prints raw stacks to stderr. */
  @OnWorkerEvent('error')
  onError(err: Error): void {
    this.logger.error(`transcription worker: ${err.message}`);
  }

  /** A job whose worker died (lock lapsed) went back to the queue; this process noticed. */
  @OnWorkerEvent('stalled')
  onStalled(jobId: string): void {
    this.logger.warn(`job ${jobId} stalled (its worker stopped renewing the lock); queued again`, { job_id: jobId });
  }
}
