import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { Job, type Queue } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { FairScheduler } from './fair-scheduling.js';
import type { WaitingJob } from './long-audio/chunk-queues.js';
import { QueueName, TranscriptionJobName, type JobProgress, type TranscriptionJobData, type TranscriptionJobResult } from './job-catalog.js';

/** BullMQ's view of a job, reduced to what the gateway reads. */
export interface QueuedJobState {
  /** BullMQ state: waiting, prioritized, delayed, active, waiting-children, completed, failed. */
  state: string;
  data: TranscriptionJobData;
  progress: Partial<JobProgress> | null;
  attemptsMade: number;
  /** Attempts allowed in total (1 + retries). */
  attempts: number;
  returnvalue: TranscriptionJobResult | null;
  failedReason: string | null;
  /** Epoch ms. */
  finishedOn: number | null;
}

/**
 * The one class that talks to BullMQ's Queue for transcription jobs (adding, reading state,
 * removing, pinging Redis). Services never import bullmq themselves.
 */
@Injectable()
export class TranscriptionQueue {
  constructor(
    @InjectQueue(QueueName.Transcription) private readonly queue: Queue<TranscriptionJobData, TranscriptionJobResult>,
    private readonly config: AppConfig,
    private readonly fair: FairScheduler,
  ) {}

  /**
   * Enqueues a transcription with `jobId` as the BullMQ id.
   * `attempts` in total (1 + retries, times the engines of a fallback chain), delays
   * JOB_BACKOFF_MS × 2^n (exponential); finished jobs stay in Redis for REDIS_JOB_TTL seconds,
   * then status comes from Postgres. With `turn` (and FAIR_SCHEDULING on), the job gets the
   * BullMQ priority of its key's next turn (FairScheduler, docs/scheduling.md).
   * @param turn the submitting key's label and the job's audio seconds (its cost).
   */
  async add(jobId: string, data: TranscriptionJobData, attempts: number, turn?: { keyLabel: string; audioSec: number }): Promise<void> {
    const priority = turn ? (await this.fair.priorities(this.queue, turn.keyLabel, [turn.audioSec]))?.[0] : undefined;
    await this.queue.add(TranscriptionJobName.Transcribe, data, {
      jobId,
      attempts,
      ...(priority ? { priority } : {}),
      backoff: { type: 'exponential', delay: this.config.JOB_BACKOFF_MS },
      removeOnComplete: { age: this.config.REDIS_JOB_TTL },
      removeOnFail: { age: this.config.REDIS_JOB_TTL },
    });
  }

  /** The job's state in Redis, or null when Redis no longer (or never) had it. */
  async get(jobId: string): Promise<QueuedJobState | null> {
    const job = await this.queue.getJob(jobId);
    if (!job) return null;
    const state = await job.getState();
    if (state === 'unknown') return null;
    return {
      state,
      data: job.data,
      progress: typeof job.progress === 'object' && job.progress !== null ? (job.progress) : null,
      attemptsMade: job.attemptsMade,
      attempts: job.opts.attempts ?? 1,
      returnvalue: job.returnvalue ?? null,
      failedReason: job.failedReason ?? null,
      finishedOn: job.finishedOn ?? null,
    };
  }

  /** Sets a job's progress from outside its own processor (chunk workers report pieces done). */
  async updateProgress(jobId: string, progress: JobProgress): Promise<void> {
    const job = await this.queue.getJob(jobId);
    await job?.updateProgress(progress);
  }

  /**
   * Chunk jobs of a split job that have finished (BullMQ's processed dependencies of the parent).
   * @returns 0 when the job is gone.
   */
  async childrenDone(jobId: string): Promise<number> {
    const job = await Job.fromId(this.queue, jobId);
    if (!job) return 0;
    const { processed } = await job.getDependenciesCount({ processed: true });
    return processed ?? 0;
  }

  /** Jobs per BullMQ state (waiting, active, delayed, waiting-children, completed, failed…), for metrics. */
  counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts();
  }

  /** The first `limit` jobs waiting (not delayed), in the order workers will take them (wait list, then by priority). */
  async waiting(limit: number): Promise<WaitingJob[]> {
    const jobs = await this.queue.getJobs(['wait', 'prioritized'], 0, limit - 1, true);
    return jobs.filter((j) => j?.id).slice(0, limit).map((j) => ({ id: j.id!, engine: j.data.engine, keyLabel: j.data.keyLabel ?? null, enqueuedAt: j.timestamp }));
  }

  /**
   * Removes a job and its chunk jobs from Redis where BullMQ allows it; a job or chunk that a
   * worker holds (active) cannot be removed and ends through cancellation instead.
   * @returns false when some part was running.
   */
  async removeWithChildren(jobId: string): Promise<boolean> {
    try {
      await this.queue.remove(jobId, { removeChildren: true });
      return true;
    } catch {
      return false;
    }
  }

  /** Removes a job that is not running (rollback of a submission). */
  async remove(jobId: string): Promise<void> {
    await this.queue.remove(jobId);
  }

  /**
   * A round-trip to Redis, bounded by `timeoutMs`: BullMQ's connections retry forever while Redis
   * is down, so an unbounded call would hang the health check.
   * @throws Error when Redis does not answer in time.
   */
  async ping(timeoutMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.queue.getJobCounts('waiting'),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs); }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
