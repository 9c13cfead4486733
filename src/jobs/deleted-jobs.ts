import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import { redisConnection } from '../common/redis.js';
import { AppConfig } from '../config/app-config.js';

/** Seconds a deleted job is remembered (answered 410 rather than 404): 30 days. */
export const DELETED_JOB_MEMORY_SEC = 30 * 24 * 3600;

/** Longest a tombstone read or write may wait for Redis (ms): a lookup of an unknown id must not hang on it. */
const REDIS_TIMEOUT_MS = 2000;

/**
 * Which job ids were deleted by `DELETE /api/transcribe/jobs/:job_id`, so that later requests
 * for them are answered 410 Gone rather than 404 (the rows, the transcript and the audio are
 * gone; a 404 would say the id was never valid). One Redis key per deleted job
 * (`<QUEUE_PREFIX>:deleted-job:<id>`, the deletion time), kept DELETED_JOB_MEMORY_SEC, shared by
 * every API process. Best effort: when Redis cannot answer, a deleted job reads as unknown (404).
 */
@Injectable()
export class DeletedJobs implements OnModuleDestroy {
  private readonly logger = new Logger(DeletedJobs.name);
  private readonly redis: Redis;

  constructor(private readonly config: AppConfig) {
    this.redis = new Redis({
      ...redisConnection(config.REDIS_URL),
      connectionName: 'deleted-jobs',
      lazyConnect: true,
      commandTimeout: REDIS_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
    });
    this.redis.on('error', (err: Error) => this.logger.warn(`Redis for deleted-job records: ${err.message}`));
  }

  private key(jobId: string): string {
    return `${this.config.QUEUE_PREFIX}:deleted-job:${jobId}`;
  }

  /** Records that `jobId` was deleted (never throws: a failure is logged and the job later reads as unknown). */
  async record(jobId: string): Promise<void> {
    try {
      await this.redis.set(this.key(jobId), new Date().toISOString(), 'EX', DELETED_JOB_MEMORY_SEC);
    } catch (err) {
      this.logger.warn(`could not record the deletion of job ${jobId}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** ISO time `jobId` was deleted, or null (never deleted, forgotten, or Redis unreachable). */
  async deletedAt(jobId: string): Promise<string | null> {
    try {
      return await this.redis.get(this.key(jobId));
    } catch {
      return null;
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
