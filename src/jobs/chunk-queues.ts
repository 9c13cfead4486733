import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { redisConnection } from '../common/redis.js';
import { AppConfig } from '../config/app-config.js';
import { isDatabaseUnavailable } from '../database/database-errors.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import { ChunkJobName, chunkQueueName, type ChunkJobData, type ChunkJobResult } from './jobs.constants.js';
import { WORKER_ID } from './worker-id.js';

/** The parent a chunk job reports to (BullMQ flow). */
export interface ParentRef {
  id: string;
  /** BullMQ's qualified name of the parent's queue (`prefix:name`). */
  queue: string;
}

/**
 * The one class that talks to BullMQ for chunk jobs: one queue per engine (`chunks-<engine>`),
 * so an engine's concurrency is bounded on its own — BullMQ's global concurrency caps the chunk
 * calls in flight across every worker (e.g. the number of GPU replicas of whisper-rocm).
 */
@Injectable()
export class ChunkQueues implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly queues = new Map<string, Queue<ChunkJobData, ChunkJobResult>>();
  private counter: Redis | undefined;

  constructor(
    private readonly config: AppConfig,
    private readonly registry: EngineRegistry,
  ) {}

  queue(engineId: string): Queue<ChunkJobData, ChunkJobResult> {
    let q = this.queues.get(engineId);
    if (!q) {
      q = new Queue(chunkQueueName(engineId), { connection: redisConnection(this.config.REDIS_URL), prefix: this.config.QUEUE_PREFIX });
      this.queues.set(engineId, q);
    }
    return q;
  }

  async onApplicationBootstrap(): Promise<void> {
    for (const engine of this.registry.all()) {
      if (engine.concurrency) await this.queue(engine.id).setGlobalConcurrency(engine.concurrency);
    }
  }

  /**
   * Adds the pieces of one job as BullMQ children of `parent`. Child ids are derived from the
   * parent id and piece index, so a split step that runs twice (after a crash) adds nothing twice.
   * A piece is retried alone with exponential backoff; when it finally fails, the parent fails.
   */
  async addChunks(parent: ParentRef, engineId: string, chunks: ChunkJobData[], maxRetries: number, fallbackCount = 0): Promise<void> {
    await this.queue(engineId).addBulk(
      chunks.map((data) => ({
        name: ChunkJobName.TranscribeChunk,
        data,
        opts: {
          jobId: `${parent.id}-p${data.piece.index}`,
          parent,
          attempts: (maxRetries + 1) * (1 + fallbackCount),
          backoff: { type: 'exponential', delay: this.config.JOB_BACKOFF_MS },
          failParentOnFailure: true,
          removeOnComplete: { age: this.config.REDIS_JOB_TTL },
          removeOnFail: { age: this.config.REDIS_JOB_TTL },
        },
      })),
    );
  }

  /** Atomically counts one more finished piece of `parentId` (Redis INCR) and returns the new count. */
  async countDone(parentId: string): Promise<number> {
    this.counter ??= new Redis(redisConnection(this.config.REDIS_URL));
    const key = `${this.config.QUEUE_PREFIX}:chunks-done:${parentId}`;
    const [[, count]] = (await this.counter.multi().incr(key).expire(key, this.config.REDIS_JOB_TTL).exec()) as [[null, number]];
    return count;
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.counter?.disconnect();
  }
}

/** What a chunk worker runs for one attempt of one piece. */
export type ChunkHandler = (job: {
  id: string;
  data: ChunkJobData;
  attempt: number;
  maxAttempts: number;
  signal: AbortSignal;
}) => Promise<ChunkJobResult>;

/** A piece failure the handler marks as final (BullMQ makes no further attempts). */
export class FinalChunkError extends Error {}

/**
 * BullMQ workers for every engine's chunk queue (worker role). Thin: adapt the BullMQ job and
 * call the handler; after each completed piece, `onPieceDone` lets the parent report progress.
 */
@Injectable()
export class ChunkWorkers implements OnModuleDestroy {
  private readonly logger = new Logger(ChunkWorkers.name);
  private readonly workers: Worker<ChunkJobData, ChunkJobResult>[] = [];

  constructor(
    private readonly config: AppConfig,
    private readonly registry: EngineRegistry,
  ) {}

  start(handler: ChunkHandler, onPieceDone: (data: ChunkJobData) => Promise<void>): void {
    for (const engine of this.registry.all()) {
      const worker = new Worker<ChunkJobData, ChunkJobResult>(
        chunkQueueName(engine.id),
        async (job: Job<ChunkJobData, ChunkJobResult>, _token?: string, signal?: AbortSignal) => {
          try {
            return await handler({
              id: job.id!,
              data: job.data,
              attempt: job.attemptsMade + 1,
              maxAttempts: job.opts.attempts ?? 1,
              signal: signal ?? new AbortController().signal,
            });
          } catch (err) {
            if (err instanceof FinalChunkError) throw new UnrecoverableError(err.message);
            if (isDatabaseUnavailable(err)) {
              // As for whole jobs (TranscriptionProcessor): an outage spends no attempt.
              await worker.rateLimit(Math.max(1000, this.config.JOB_BACKOFF_MS));
              throw Worker.RateLimitError();
            }
            throw err;
          }
        },
        {
          connection: redisConnection(this.config.REDIS_URL),
          prefix: this.config.QUEUE_PREFIX,
          concurrency: this.config.WORKER_CONCURRENCY,
          name: WORKER_ID,
          lockDuration: this.config.WORKER_LOCK_DURATION_MS,
          stalledInterval: this.config.WORKER_STALLED_INTERVAL_MS,
        },
      );
      worker.on('completed', (job) => {
        onPieceDone(job.data).catch((err: unknown) => this.logger.warn(`progress update failed: ${String(err)}`));
      });
      worker.on('error', (err) => this.logger.error(`chunk worker (${engine.id}): ${err.message}`));
      worker.on('stalled', (jobId) => this.logger.warn(`chunk job ${jobId} stalled (its worker stopped renewing the lock); queued again`));
      this.workers.push(worker);
    }
  }

  /** Aborts the running pieces of a job in this process (ids follow ChunkQueues.addChunks). */
  cancel(parentJobId: string, pieces: number): void {
    for (const worker of this.workers) {
      for (let i = 0; i < pieces; i++) worker.cancelJob(`${parentJobId}-p${i}`, 'job cancelled');
    }
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
