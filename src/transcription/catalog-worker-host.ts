import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, type Type } from '@nestjs/common';
import { UnrecoverableError, Worker, type Job, type WorkerOptions } from 'bullmq';
import { isDatabaseUnavailable } from '../database/database-errors.js';
import { AttemptFailure } from './failure.js';

/** What the boot check reads off every processor: its queue and the job names it handles. */
export interface CatalogHandler {
  readonly queueName: string;
  readonly handles: readonly string[];
}

/**
 * The base of every BullMQ processor of the gateway (the one way workers are built: as
 * `@nestjs/bullmq` processor hosts). Subclasses are thin: they name the job names they handle and
 * implement `handle`. The base maps outcomes to BullMQ in one place:
 * - an AttemptFailure that is not retryable → UnrecoverableError (no further attempts);
 * - PostgreSQL unreachable → the job goes back to the queue without spending an attempt (BullMQ's
 *   manual rate limit), since an outage is not the job's fault and retrying on the backoff
 *   schedule would spend every attempt within seconds;
 * - a job name the processor does not handle → UnrecoverableError.
 */
export abstract class CatalogWorkerHost extends WorkerHost implements CatalogHandler {
  protected readonly logger = new Logger(this.constructor.name);
  abstract readonly queueName: string;
  abstract readonly handles: readonly string[];
  /** Pause before a worker takes another job after a database outage, ms (boundProcessor sets it from JOB_BACKOFF_MS). */
  protected outageBackoffMs = 1000;

  /** One attempt of one job. BullMQ passes the lock token and an AbortSignal (cancelJob, shutdown). */
  protected abstract handle(job: Job, token: string | undefined, signal: AbortSignal): Promise<unknown>;

  override async process(job: Job, token?: string, signal?: AbortSignal): Promise<unknown> {
    if (!this.handles.includes(job.name)) throw new UnrecoverableError(`no handler for job '${job.name}' on queue ${this.queueName}`);
    try {
      return await this.handle(job, token, signal ?? new AbortController().signal);
    } catch (err) {
      if (err instanceof AttemptFailure && !err.retryable) throw new UnrecoverableError(err.message);
      if (isDatabaseUnavailable(err)) {
        this.logger.warn(`job ${job.id}: the database is unreachable (${err instanceof Error ? err.message : String(err)}); back to the queue, no attempt spent`, { job_id: job.id });
        await this.worker.rateLimit(this.outageBackoffMs);
        throw Worker.RateLimitError();
      }
      throw err;
    }
  }

  /** Connection errors (Redis restarting): logged as JSON lines; without a listener BullMQ prints raw stacks to stderr. */
  @OnWorkerEvent('error')
  onWorkerError(err: Error): void {
    this.logger.error(`${this.queueName} worker: ${err.message}`);
  }

  /** A job whose worker died (lock lapsed) went back to the queue; this process noticed. */
  @OnWorkerEvent('stalled')
  onStalled(jobId: string): void {
    this.logger.warn(`job ${jobId} on ${this.queueName} stalled (its worker stopped renewing the lock); queued again`, { job_id: jobId });
  }
}

/**
 * A processor class bound to one queue with worker options from the validated config (lock
 * duration, stalled interval, concurrency): `@Processor` is applied here, at module registration,
 * because its options must come from AppConfig rather than from `process.env` at import time.
 * Each call returns a new subclass, so one base can serve several queues (one per engine).
 */
export function boundProcessor<T extends CatalogWorkerHost>(
  base: abstract new (...args: never[]) => T,
  queueName: string,
  options: Partial<WorkerOptions> & { outageBackoffMs: number },
): Type<T> {
  const { outageBackoffMs, ...workerOptions } = options;
  // The base is concrete in all but its queue: the subclass only names the queue.
  const bound = class extends (base as unknown as new (...args: never[]) => { queueName: string; outageBackoffMs: number }) {
    override readonly queueName = queueName;
    override outageBackoffMs = outageBackoffMs;
  };
  Object.defineProperty(bound, 'name', { value: `${base.name}[${queueName}]` });
  Processor(queueName, workerOptions)(bound);
  return bound as unknown as Type<T>;
}
