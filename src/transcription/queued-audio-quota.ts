import { HttpStatus, Injectable, Logger, Optional, type OnModuleDestroy } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { Redis } from 'ioredis';
import { GatewayError } from '../common/gateway-error.js';
import { redisConnection } from '../common/redis.js';
import { AppConfig } from '../config/app-config.js';
import { JobRepository } from './job.repository.js';
import { TranscriptionEvent, type JobCancelledEvent, type JobCompletedEvent, type JobFailedEvent } from './transcription.events.js';

/** Seconds a client refused by the quota is told to wait (`Retry-After`): about one chunk of another job finishing. */
export const QUOTA_RETRY_AFTER_SEC = 30;

export type QuotaErrorCode =
  /** The key's queued + running audio plus this file would exceed MAX_QUEUED_AUDIO_SECONDS_PER_KEY (429, retry later). */
  | 'QUEUED_AUDIO_QUOTA'
  /** This file alone holds more audio than the quota: it can never be accepted (413). */
  | 'AUDIO_LONGER_THAN_QUOTA';

/** A submission refused by the per-key quota of queued audio seconds. */
export class QuotaError extends GatewayError {
  constructor(
    readonly code: QuotaErrorCode,
    message: string,
    /** `{limit_sec, queued_sec, file_sec}` (seconds of audio), plus `retry_after` (seconds) on 429. */
    publicFields: Record<string, unknown>,
  ) {
    super(message, { status: code === 'QUEUED_AUDIO_QUOTA' ? HttpStatus.TOO_MANY_REQUESTS : HttpStatus.PAYLOAD_TOO_LARGE, retryable: code === 'QUEUED_AUDIO_QUOTA', publicFields });
  }
}

/**
 * KEYS: used (hash label → seconds), jobs (hash job id → "label<TAB>seconds<TAB>reserved at, ms since the epoch").
 * ARGV: label, job id, seconds, limit, now (ms). Returns {1|0, seconds of the key before this job}.
 * A job already reserved is accepted again without counting twice (a retried submission step).
 */
const RESERVE = `
local before = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return {1, before} end
if tonumber(before) + tonumber(ARGV[3]) > tonumber(ARGV[4]) + 0.000001 then return {0, before} end
redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1] .. '\t' .. ARGV[3] .. '\t' .. ARGV[5])
return {1, before}
`;

/** KEYS: used, jobs. ARGV: job id. Returns 1 when the job held seconds (now given back), 0 when it held none. */
const RELEASE = `
local held = redis.call('HGET', KEYS[2], ARGV[1])
if not held then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
local tab = string.find(held, '\t', 1, true)
local label = string.sub(held, 1, tab - 1)
local rest = string.sub(held, tab + 1)
local tab2 = string.find(rest, '\t', 1, true)
local sec = tab2 and string.sub(rest, 1, tab2 - 1) or rest
local left = tonumber(redis.call('HINCRBYFLOAT', KEYS[1], label, '-' .. sec))
if left <= 0.000001 then redis.call('HDEL', KEYS[1], label) end
return 1
`;

/**
 * A reservation at least this old whose job has ended (or whose rows do not exist) is stale:
 * younger ones may belong to a submission still writing its rows (JobSubmitter reserves first).
 */
export const STALE_RESERVATION_MS = 60_000;

const fmt = (sec: number) => `${(Math.round(sec * 10) / 10).toFixed(1)} s`;

/**
 * The per-key quota of queued audio seconds (MAX_QUEUED_AUDIO_SECONDS_PER_KEY), one counter per
 * key in Redis (`<prefix>:quota:queued-audio-sec`, plus which job holds how much in
 * `<prefix>:quota:jobs`), so every API replica sees the same count and a check-and-add is one
 * atomic script. JobSubmitter reserves a job's seconds before queueing it; they are given back when
 * the job completes, fails or is cancelled (this class subscribes to those lifecycle events, in
 * whichever process emits them) and when the submission is rolled back. Giving back is
 * idempotent: a job's seconds are returned at most once.
 *
 * A job can end without its seconds coming back (the give-back failed on a Redis hiccup; its rows
 * were deleted while it waited; Redis lost the job): so that such seconds never lock a key out,
 * a key that hits its limit has its reservations checked against Postgres first, and those of
 * jobs that have ended, or have no rows, and are older than STALE_RESERVATION_MS are given back.
 */
@Injectable()
export class QueuedAudioQuota implements OnModuleDestroy {
  private readonly logger = new Logger(QueuedAudioQuota.name);
  private client: Redis | null = null;
  private readonly usedKey: string;
  private readonly jobsKey: string;

  /**
   * @param jobs where a job's state is read when a key hits its limit (absent: no check, e.g. in a
   *   process or test without Postgres).
   */
  constructor(
    private readonly config: AppConfig,
    @Optional() private readonly jobs?: JobRepository,
  ) {
    this.usedKey = `${config.QUEUE_PREFIX}:quota:queued-audio-sec`;
    this.jobsKey = `${config.QUEUE_PREFIX}:quota:jobs`;
  }

  private get redis(): Redis {
    this.client ??= new Redis({ ...redisConnection(this.config.REDIS_URL), connectionName: 'quota' });
    return this.client;
  }

  async onModuleDestroy(): Promise<void> {
    await this.client?.quit().catch(() => undefined);
  }

  /** Seconds per API key limit (0: no quota). */
  get limit(): number {
    return this.config.MAX_QUEUED_AUDIO_SECONDS_PER_KEY;
  }

  /**
   * Counts `audioSec` of job `jobId` against key `keyLabel`.
   * @param audioSec seconds of audio in the file (null, unknown: counts as 0).
   * @throws QuotaError QUEUED_AUDIO_QUOTA (429, `retry_after` seconds) when the key would go over
   *   the limit; AUDIO_LONGER_THAN_QUOTA (413) when the file alone is longer than the limit.
   *   Whatever Redis throws.
   */
  async reserve(keyLabel: string, jobId: string, audioSec: number | null): Promise<void> {
    const limit = this.limit;
    if (limit <= 0) return;
    const sec = Math.max(0, audioSec ?? 0);
    if (sec > limit) {
      throw new QuotaError('AUDIO_LONGER_THAN_QUOTA', `this file holds ${fmt(sec)} of audio, more than the ${limit} s one API key may have queued at once (MAX_QUEUED_AUDIO_SECONDS_PER_KEY); split it into shorter files`, {
        limit_sec: limit, file_sec: Math.round(sec * 10) / 10,
      });
    }
    const tryReserve = async () => (await this.redis.eval(RESERVE, 2, this.usedKey, this.jobsKey, keyLabel, jobId, sec.toFixed(3), String(limit), String(Date.now()))) as [number, string];
    let [ok, before] = await tryReserve();
    if (ok !== 1 && (await this.releaseStale(keyLabel)) > 0) [ok, before] = await tryReserve();
    if (ok === 1) return;
    const queued = Math.round(Number(before) * 10) / 10;
    throw new QuotaError(
      'QUEUED_AUDIO_QUOTA',
      `this API key already has ${fmt(queued)} of audio queued or running and this file adds ${fmt(sec)}, over the limit of ${limit} s per key (MAX_QUEUED_AUDIO_SECONDS_PER_KEY); retry after ${QUOTA_RETRY_AFTER_SEC} s, once some of its jobs have finished`,
      { limit_sec: limit, queued_sec: queued, file_sec: Math.round(sec * 10) / 10, retry_after: QUOTA_RETRY_AFTER_SEC },
    );
  }

  /**
   * Gives back the seconds of `keyLabel`'s stale reservations: older than STALE_RESERVATION_MS,
   * of jobs whose row says they ended or that have no row (Postgres decides; without it, none).
   * @returns how many reservations were given back.
   * @throws whatever Redis or Postgres throw.
   */
  async releaseStale(keyLabel: string): Promise<number> {
    if (!this.jobs || this.limit <= 0) return 0;
    const now = Date.now();
    const candidates = Object.entries(await this.redis.hgetall(this.jobsKey))
      .filter(([, held]) => {
        const [label, , at] = held.split('\t');
        // Reservations written before the time was recorded count as old.
        return label === keyLabel && (at === undefined || now - Number(at) >= STALE_RESERVATION_MS);
      })
      .map(([jobId]) => jobId);
    if (candidates.length === 0) return 0;
    const open = await this.jobs.openJobIds(candidates);
    const stale = candidates.filter((jobId) => !open.has(jobId));
    for (const jobId of stale) await this.release(jobId);
    if (stale.length) this.logger.warn(`gave back the queued-audio quota of ${stale.length} job(s) of key ${keyLabel} that had ended without giving it back: ${stale.join(', ')}`);
    return stale.length;
  }

  /** Gives back the seconds job `jobId` holds (none: nothing happens). @throws whatever Redis throws. */
  async release(jobId: string): Promise<void> {
    if (this.limit <= 0) return;
    await this.redis.eval(RELEASE, 2, this.usedKey, this.jobsKey, jobId);
  }

  /** Seconds of audio `keyLabel` has queued or running (0 when none or no quota). */
  async queuedSeconds(keyLabel: string): Promise<number> {
    if (this.limit <= 0) return 0;
    return Number((await this.redis.hget(this.usedKey, keyLabel)) ?? 0);
  }

  @OnEvent(TranscriptionEvent.Completed, { async: true, promisify: true })
  onCompleted(event: JobCompletedEvent): Promise<void> {
    return this.releaseQuietly(event.jobId);
  }

  @OnEvent(TranscriptionEvent.Failed, { async: true, promisify: true })
  onFailed(event: JobFailedEvent): Promise<void> {
    return this.releaseQuietly(event.jobId);
  }

  @OnEvent(TranscriptionEvent.Cancelled, { async: true, promisify: true })
  onCancelled(event: JobCancelledEvent): Promise<void> {
    return this.releaseQuietly(event.jobId);
  }

  /** A failed give-back must not change a job's outcome: it is logged (the key's count stays too high until cleared). */
  private async releaseQuietly(jobId: string): Promise<void> {
    try {
      await this.release(jobId);
    } catch (err) {
      this.logger.error(`could not give back the queued-audio quota of job ${jobId}: ${err instanceof Error ? err.message : String(err)}`, { job_id: jobId });
    }
  }
}
