import { getQueueToken } from '@nestjs/bullmq';
import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Queue } from 'bullmq';
import { AppConfig } from '../../config/app-config.js';
import { EngineRegistry } from '../../engines/engine-registry.js';
import { FairScheduler } from '../fair-scheduling.js';
import { ChunkJobName, chunkQueueName, type ChunkJobData, type ChunkJobResult } from '../job-catalog.js';

/** The parent a chunk job reports to (BullMQ flow). */
export interface ParentRef {
  id: string;
  /** BullMQ's qualified name of the parent's queue (`prefix:name`). */
  queue: string;
}

/** A job waiting in a queue, as the backlog views list it. */
export interface WaitingJob {
  /** BullMQ job id (a transcription job's id is its public job_id). */
  id: string;
  /** For a chunk job: its transcription job's id. */
  parentId?: string;
  engine: string;
  /** Label of the submitting API key; null for jobs queued before it was recorded. */
  keyLabel: string | null;
  /** Epoch ms the job was added to this queue. */
  enqueuedAt: number;
}

/** BullMQ id of a piece's chunk job: derived from the parent id, so a split that runs twice adds nothing twice. */
export const chunkJobId = (parentJobId: string, pieceIndex: number) => `${parentJobId}-p${pieceIndex}`;

/**
 * The one class that puts chunk jobs on BullMQ: one queue per engine (`chunks-<engine>`, each
 * registered with BullModule by TranscriptionModule), so an engine's concurrency is bounded on
 * its own — BullMQ's global concurrency caps the chunk calls in flight across every worker
 * (e.g. the number of GPU replicas of whisper-rocm, WHISPER_ROCM_CONCURRENCY).
 */
@Injectable()
export class ChunkQueues implements OnApplicationBootstrap {
  constructor(
    private readonly config: AppConfig,
    private readonly registry: EngineRegistry,
    private readonly moduleRef: ModuleRef,
    private readonly fair: FairScheduler,
  ) {}

  /** The chunk queue of an enabled engine. */
  queue(engineId: string): Queue<ChunkJobData, ChunkJobResult> {
    return this.moduleRef.get<Queue<ChunkJobData, ChunkJobResult>>(getQueueToken(chunkQueueName(engineId)), { strict: false });
  }

  async onApplicationBootstrap(): Promise<void> {
    for (const engine of this.registry.all()) {
      if (engine.concurrency) await this.queue(engine.id).setGlobalConcurrency(engine.concurrency);
    }
  }

  /**
   * Adds the pieces of one job as BullMQ children of `parent`. A piece is retried alone with
   * exponential backoff (JOB_BACKOFF_MS × 2^n); when it finally fails, the parent fails.
   * With FAIR_SCHEDULING on, each piece gets the BullMQ priority of its key's next turn
   * (FairScheduler: the key's pieces are spread among other keys' pieces by audio seconds).
   * @param attempts attempts per piece in total (1 + retries, times the engines of a fallback chain).
   * @param keyLabel label of the API key the job was submitted with (`anonymous` without one).
   */
  async addChunks(parent: ParentRef, engineId: string, chunks: ChunkJobData[], attempts: number, keyLabel: string): Promise<void> {
    const queue = this.queue(engineId);
    const priorities = await this.fair.priorities(queue, keyLabel, chunks.map((c) => c.durationSec));
    await queue.addBulk(
      chunks.map((data, i) => ({
        name: ChunkJobName.TranscribeChunk,
        data,
        opts: {
          jobId: chunkJobId(parent.id, data.piece.index),
          parent,
          attempts,
          ...(priorities ? { priority: priorities[i] } : {}),
          backoff: { type: 'exponential', delay: this.config.JOB_BACKOFF_MS },
          failParentOnFailure: true,
          removeOnComplete: { age: this.config.REDIS_JOB_TTL },
          removeOnFail: { age: this.config.REDIS_JOB_TTL },
        },
      })),
    );
  }

  /** Workers (processes) consuming an engine's chunk queue right now. */
  workerCount(engineId: string): Promise<number> {
    return this.queue(engineId).getWorkersCount();
  }

  /** Jobs per BullMQ state in an engine's chunk queue, for metrics. */
  counts(engineId: string): Promise<Record<string, number>> {
    return this.queue(engineId).getJobCounts();
  }

  /**
   * The first `limit` chunk jobs waiting in an engine's queue, in the order workers will take them
   * (BullMQ's wait list, then the prioritized set by priority). Delayed chunks (retry backoff) are
   * not waiting and not listed.
   */
  async waiting(engineId: string, limit: number): Promise<WaitingJob[]> {
    const jobs = await this.queue(engineId).getJobs(['wait', 'prioritized'], 0, limit - 1, true);
    return jobs.filter((j) => j?.id).slice(0, limit).map((j) => ({ id: j.id!, parentId: j.data.parentJobId, engine: engineId, keyLabel: j.data.keyLabel ?? null, enqueuedAt: j.timestamp }));
  }
}
