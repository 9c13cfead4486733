import { Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** How a job ended, as counted in `gateway_jobs_total{status}` (besides `submitted`). */
export type FinishedJobStatus = 'completed' | 'failed';

/** What the runner reports when a job ends. */
export interface FinishedJob {
  /** Canonical engine id (never an alias), e.g. `whisper-rocm`. */
  engine: string;
  status: FinishedJobStatus;
  /** Wall time from submission to the end of the job, seconds (queueing and retries included). */
  durationSec: number;
  /** Duration of the transcribed audio, seconds (0 or less when unknown). */
  audioSec: number;
  /** Time spent in the engine (all chunks, all attempts that produced the result), seconds. */
  processingSec: number;
  /** The API key the job was submitted with; only a short hash of it ever reaches a label. */
  apiKey?: string | null;
  /**
   * The label already computed with {@link apiKeyLabel} at submission; wins over `apiKey`. Lets a
   * job payload carry the label through Redis instead of the key.
   */
  keyLabel?: string;
}

/** State (BullMQ job state: waiting, active, delayed, failed, completed, paused, prioritized…) → number of jobs. */
export type QueueCounts = Record<string, number>;
/** Engine id → whether its last health probe succeeded. */
export type EngineStates = Record<string, boolean>;

/** Waiting work of one queue, engine and API key label, as a backlog collector reports it. */
export interface BacklogSample {
  queue: string;
  engine: string;
  /** API key label (never the key). */
  api_key: string;
  /** Jobs waiting for a worker. */
  waiting: number;
  /** Seconds the longest-waiting of them has waited; null when none. */
  oldest_wait_sec: number | null;
}

/** Value of the `api_key` label for requests without a key. */
export const ANONYMOUS_KEY_LABEL = 'anonymous';

/**
 * The `api_key` label of a key: the first 8 hex characters of its SHA-256, or `anonymous`.
 * Enough to tell a handful of clients apart on a dashboard; the key itself cannot be read back
 * from it, and no label value ever holds the key.
 */
export function apiKeyLabel(apiKey: string | null | undefined): string {
  if (!apiKey) return ANONYMOUS_KEY_LABEL;
  return createHash('sha256').update(apiKey, 'utf8').digest('hex').slice(0, 8);
}

/** A scrape waits at most this long for a collector (a queue count needs Redis), then reports without it. */
const COLLECTOR_TIMEOUT_MS = 2000;

/** Buckets of `gateway_job_duration_seconds`: from a short clip on a GPU to hours-long recordings. */
const DURATION_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
/** Buckets of `gateway_rtf`: GPU engines run at 0.01–0.2, CPU engines around 0.3–2. */
const RTF_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5];

/**
 * Prometheus metrics of the gateway, on a registry of its own (never prom-client's global one,
 * so tests and several app instances in one process do not share counters).
 *
 * Counters and histograms are recorded by whoever sees the event (jobs call jobSubmitted and
 * jobFinished); the gauges are read at scrape time through collectors that the jobs and engines
 * modules hand in, so this module depends on neither.
 *
 * Metrics (all names prefixed `gateway_`; Node process metrics too, e.g. `gateway_process_cpu_seconds_total`):
 * - `gateway_jobs_total{engine,status}` counter — status `submitted`, `completed`, `failed`
 * - `gateway_job_duration_seconds{engine}` histogram — wall time of completed jobs, seconds
 * - `gateway_audio_seconds_total{engine,api_key}` counter — seconds of audio transcribed
 * - `gateway_rtf{engine}` histogram — real-time factor, processing seconds / audio seconds
 * - `gateway_queue_depth{queue,state}` gauge — jobs per BullMQ queue and state, at scrape time
 * - `gateway_queue_waiting{queue,engine,api_key}` gauge — jobs waiting for a worker, per queue, engine and API key, at scrape time
 * - `gateway_queue_oldest_wait_seconds{queue,engine,api_key}` gauge — how long the longest-waiting of them has waited, seconds
 * - `gateway_engine_up{engine}` gauge — 1 when the engine's last health probe succeeded, else 0
 * - `gateway_metrics_collector_errors_total{collector}` counter — collectors that failed or timed out during a scrape
 */
@Injectable()
export class MetricsService {
  /** Only {@link scrape} renders it, so the scrape-time gauges are always read first. */
  private readonly registry = new Registry();

  private readonly logger = new Logger(MetricsService.name);
  private readonly queueCollectors = new Map<string, () => Promise<QueueCounts> | QueueCounts>();
  private engineCollector: (() => Promise<EngineStates> | EngineStates) | null = null;
  private backlogCollector: (() => Promise<BacklogSample[]> | BacklogSample[]) | null = null;

  private readonly jobs: Counter<'engine' | 'status'>;
  private readonly duration: Histogram<'engine'>;
  private readonly audio: Counter<'engine' | 'api_key'>;
  private readonly rtf: Histogram<'engine'>;
  private readonly collectorErrors: Counter<'collector'>;
  private readonly queueDepth: Gauge<'queue' | 'state'>;
  private readonly engineUp: Gauge<'engine'>;
  private readonly waiting: Gauge<'queue' | 'engine' | 'api_key'>;
  private readonly oldestWait: Gauge<'queue' | 'engine' | 'api_key'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'gateway_' });
    this.jobs = new Counter({ name: 'gateway_jobs_total', help: 'Transcription jobs by engine and status (submitted, completed, failed).', labelNames: ['engine', 'status'], registers });
    this.duration = new Histogram({ name: 'gateway_job_duration_seconds', help: 'Wall time of completed jobs, submission to result, in seconds.', labelNames: ['engine'], buckets: DURATION_BUCKETS, registers });
    this.audio = new Counter({ name: 'gateway_audio_seconds_total', help: 'Seconds of audio transcribed, by engine and API key (a short hash of the key, or anonymous).', labelNames: ['engine', 'api_key'], registers });
    this.rtf = new Histogram({ name: 'gateway_rtf', help: 'Real-time factor of completed jobs: engine processing seconds / audio seconds (below 1 is faster than real time).', labelNames: ['engine'], buckets: RTF_BUCKETS, registers });
    this.collectorErrors = new Counter({ name: 'gateway_metrics_collector_errors_total', help: 'Scrape-time collectors that failed or timed out (their gauge is left empty for that scrape).', labelNames: ['collector'], registers });

    this.queueDepth = new Gauge({ name: 'gateway_queue_depth', help: 'Jobs per queue and state (BullMQ job counts), read at scrape time.', labelNames: ['queue', 'state'], registers });
    this.waiting = new Gauge({ name: 'gateway_queue_waiting', help: 'Jobs waiting for a worker, per queue, engine and API key (a short hash of the key, or anonymous), read at scrape time.', labelNames: ['queue', 'engine', 'api_key'], registers });
    this.oldestWait = new Gauge({ name: 'gateway_queue_oldest_wait_seconds', help: 'Seconds the longest-waiting job of each queue, engine and API key has waited, read at scrape time.', labelNames: ['queue', 'engine', 'api_key'], registers });
    this.engineUp = new Gauge({ name: 'gateway_engine_up', help: 'Whether the engine answered its last health probe (1) or not (0), read at scrape time.', labelNames: ['engine'], registers });
  }

  /** `Content-Type` of {@link scrape}'s output (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The metrics in Prometheus text format. Reads the gauges through their collectors first (all
   * at once, each with a 2 s deadline), so a failed collector is already counted in this scrape.
   */
  async scrape(): Promise<string> {
    await Promise.all([this.collectQueueDepth(), this.collectEngineUp(), this.collectBacklog()]);
    return this.registry.metrics();
  }

  /** Counts a job accepted for `engine` (canonical id). */
  jobSubmitted(engine: string): void {
    this.jobs.inc({ engine, status: 'submitted' });
  }

  /**
   * Records a job that ended. Every job counts in `gateway_jobs_total`; only completed jobs add
   * to the duration, audio-seconds and RTF series, since a failed job transcribed nothing and its
   * wall time (retries, backoff) says nothing about the engine's speed. Negative or non-finite
   * times are skipped; audio of unknown length (0 or less) adds no audio seconds and no RTF.
   */
  jobFinished(job: FinishedJob): void {
    const { engine, status } = job;
    this.jobs.inc({ engine, status });
    if (status !== 'completed') return;
    if (job.durationSec >= 0 && Number.isFinite(job.durationSec)) this.duration.observe({ engine }, job.durationSec);
    if (job.audioSec > 0 && Number.isFinite(job.audioSec)) {
      this.audio.inc({ engine, api_key: job.keyLabel ?? apiKeyLabel(job.apiKey) }, job.audioSec);
      if (job.processingSec > 0 && Number.isFinite(job.processingSec)) this.rtf.observe({ engine }, job.processingSec / job.audioSec);
    }
  }

  /**
   * Sets how `gateway_queue_depth` reads one queue at scrape time, e.g.
   * `setQueueDepthCollector(() => queue.getJobCounts())`. One collector per queue name; setting
   * it again replaces it. A collector that throws or takes over 2 s leaves that queue out of the
   * scrape and counts in `gateway_metrics_collector_errors_total`.
   *
   * @param fn returns state → number of jobs (BullMQ's getJobCounts shape)
   * @param queue value of the `queue` label (default `transcription`)
   */
  setQueueDepthCollector(fn: () => Promise<QueueCounts> | QueueCounts, queue = 'transcription'): void {
    this.queueCollectors.set(queue, fn);
  }

  /**
   * Sets how `gateway_engine_up` reads engine availability at scrape time (normally the cached
   * states of the periodic health probes, so a scrape never waits on an engine).
   *
   * @param fn returns engine id → available
   */
  setEngineHealthCollector(fn: () => Promise<EngineStates> | EngineStates): void {
    this.engineCollector = fn;
  }

  /**
   * Sets how `gateway_queue_waiting` and `gateway_queue_oldest_wait_seconds` are read at scrape
   * time (one row per queue, engine and API key). Failures count like any collector's.
   */
  setBacklogCollector(fn: () => Promise<BacklogSample[]> | BacklogSample[]): void {
    this.backlogCollector = fn;
  }

  private async collectBacklog(): Promise<void> {
    const rows = this.backlogCollector ? await this.runCollector('backlog', this.backlogCollector) : null;
    this.waiting.reset();
    this.oldestWait.reset();
    for (const row of rows ?? []) {
      const labels = { queue: row.queue, engine: row.engine, api_key: row.api_key };
      this.waiting.set(labels, row.waiting);
      if (row.oldest_wait_sec !== null) this.oldestWait.set(labels, row.oldest_wait_sec);
    }
  }

  private async collectQueueDepth(): Promise<void> {
    const results = await Promise.all([...this.queueCollectors].map(async ([queue, fn]) => [queue, await this.runCollector(`queue:${queue}`, fn)] as const));
    // Reset only once every answer is in, so a concurrent scrape never sees a half-filled gauge.
    this.queueDepth.reset();
    for (const [queue, counts] of results) {
      for (const [state, n] of Object.entries(counts ?? {})) if (Number.isFinite(n)) this.queueDepth.set({ queue, state }, n);
    }
  }

  private async collectEngineUp(): Promise<void> {
    const states = this.engineCollector ? await this.runCollector('engines', this.engineCollector) : null;
    this.engineUp.reset();
    for (const [engine, up] of Object.entries(states ?? {})) this.engineUp.set({ engine }, up ? 1 : 0);
  }

  /** Runs one collector with a deadline; failures are counted and logged, never thrown into the scrape. */
  private async runCollector<T>(name: string, fn: () => Promise<T> | T): Promise<T | null> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`collector ${name} took over ${COLLECTOR_TIMEOUT_MS} ms`)), COLLECTOR_TIMEOUT_MS);
        timer.unref();
      });
      return await Promise.race([Promise.resolve().then(fn), deadline]);
    } catch (err) {
      this.collectorErrors.inc({ collector: name });
      this.logger.warn(`metrics collector ${name} failed: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    } finally {
      clearTimeout(timer);
    }
  }
}
