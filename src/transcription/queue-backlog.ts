import { Injectable } from '@nestjs/common';
import { EngineRegistry } from '../engines/engine-registry.js';
import { chunkQueueName, QueueName } from './job-catalog.js';
import { ChunkQueues, type WaitingJob } from './long-audio/chunk-queues.js';
import { TranscriptionQueue } from './transcription.queue.js';

/** Waiting jobs read per queue for one backlog snapshot; a longer backlog is reported as at least this deep (`truncated`). */
export const BACKLOG_SCAN_LIMIT = 2000;
/** A snapshot is reused for this long (ms), so many SSE streams and scrapes share one read of each queue. */
const SNAPSHOT_TTL_MS = 1000;

/** Waiting work of one group (a queue, an engine, an API key). */
export interface BacklogGroup {
  /** Jobs (or chunk jobs) waiting for a worker. */
  waiting: number;
  /** Seconds the longest-waiting of them has been in the queue; null when none waits. */
  oldest_wait_sec: number | null;
}

/** One row of the backlog: a queue, an engine and an API key label, with what waits there. */
export interface BacklogRow extends BacklogGroup {
  /** `transcription` (whole jobs: intake, short recordings, merges) or `chunks` (pieces of long recordings). */
  kind: 'transcription' | 'chunks';
  /** BullMQ queue name (`transcription`, `chunks-<engine>`). */
  queue: string;
  engine: string;
  /** Label of the API key (`anonymous` without authentication; `unknown` for jobs queued before labels were kept). */
  key: string;
}

/** Where a waiting job stands. */
export interface QueuePosition {
  /** Whole jobs that workers take before this one (it waits in the transcription queue). */
  jobs_ahead?: number;
  /** Chunks of other jobs that the engine's workers take before this job's next chunk. */
  chunks_ahead?: number;
}

interface Snapshot {
  at: number;
  transcription: WaitingJob[];
  chunks: Map<string, WaitingJob[]>;
  truncated: boolean;
}

/**
 * Back-pressure made visible: what waits in the transcription queue and in every engine's chunk
 * queue, per engine and per API key, with the age of the longest-waiting job, and where one job
 * stands in line (SSE). Reads at most BACKLOG_SCAN_LIMIT waiting jobs per queue, once per second
 * at most (a shared snapshot).
 */
@Injectable()
export class QueueBacklog {
  private snapshot: Promise<Snapshot> | null = null;

  constructor(
    private readonly queue: TranscriptionQueue,
    private readonly chunks: ChunkQueues,
    private readonly registry: EngineRegistry,
  ) {}

  /**
   * Waiting work grouped by queue, engine and key; ages in seconds at `now` (epoch ms).
   * @returns rows and whether some queue held more than BACKLOG_SCAN_LIMIT waiting jobs (counts are then lower bounds).
   * @throws whatever Redis throws.
   */
  async rows(now = Date.now()): Promise<{ rows: BacklogRow[]; truncated: boolean }> {
    const snap = await this.read();
    const groups = new Map<string, BacklogRow>();
    const add = (kind: BacklogRow['kind'], queue: string, job: WaitingJob) => {
      const key = job.keyLabel ?? 'unknown';
      const id = `${queue}\u0000${job.engine}\u0000${key}`;
      const row = groups.get(id) ?? { kind, queue, engine: job.engine, key, waiting: 0, oldest_wait_sec: null };
      row.waiting++;
      const age = Math.max(0, (now - job.enqueuedAt) / 1000);
      row.oldest_wait_sec = Math.round(Math.max(row.oldest_wait_sec ?? 0, age) * 10) / 10;
      groups.set(id, row);
    };
    for (const job of snap.transcription) add('transcription', QueueName.Transcription, job);
    for (const [engine, jobs] of snap.chunks) for (const job of jobs) add('chunks', chunkQueueName(engine), job);
    return { rows: [...groups.values()], truncated: snap.truncated };
  }

  /**
   * Where job `jobId` stands: waiting in the transcription queue (jobs ahead), or waiting for its
   * chunks (chunks of other jobs ahead of its first waiting chunk on `chunkEngine`). Null when it
   * waits for neither (running, or gone). Positions past BACKLOG_SCAN_LIMIT are not known: null.
   */
  async position(jobId: string, chunkEngine?: string): Promise<QueuePosition | null> {
    const snap = await this.read();
    const inLine = snap.transcription.findIndex((j) => j.id === jobId);
    if (inLine >= 0) return { jobs_ahead: inLine };
    if (!chunkEngine) return null;
    const chunks = snap.chunks.get(chunkEngine) ?? [];
    const first = chunks.findIndex((j) => j.parentId === jobId);
    if (first < 0) return null;
    return { chunks_ahead: chunks.slice(0, first).filter((j) => j.parentId !== jobId).length };
  }

  private read(): Promise<Snapshot> {
    const current = this.snapshot;
    if (current) return current;
    const next = this.take();
    this.snapshot = next;
    const clear = () => setTimeout(() => { if (this.snapshot === next) this.snapshot = null; }, SNAPSHOT_TTL_MS).unref();
    next.then(clear, () => { this.snapshot = null; });
    return next;
  }

  private async take(): Promise<Snapshot> {
    const engines = this.registry.all().map((e) => e.id);
    const [transcription, ...perEngine] = await Promise.all([
      this.queue.waiting(BACKLOG_SCAN_LIMIT),
      ...engines.map((id) => this.chunks.waiting(id, BACKLOG_SCAN_LIMIT)),
    ]);
    const truncated = [transcription, ...perEngine].some((list) => list.length >= BACKLOG_SCAN_LIMIT);
    return { at: Date.now(), transcription, chunks: new Map(engines.map((id, i) => [id, perEngine[i]])), truncated };
  }
}
