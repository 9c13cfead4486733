import {
  Injectable,
  Logger,
  SetMetadata,
  type CanActivate,
  type ExecutionContext,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { redisConnection } from '../common/redis.js';
import { AppConfig } from '../config/app-config.js';
import { AccessError } from './access.errors.js';
import { isPublicRoute } from './api-key.guard.js';
import { ApiKeys } from './api-keys.js';

/** Length of the rate-limit window in seconds: limits are per minute. */
export const RATE_WINDOW_SEC = 60;

/**
 * Longest a rate-limit command may wait for Redis (ms) before the request is decided by the
 * process's own counts instead. Local Redis answers in well under a millisecond; this only
 * bounds the latency a stalled Redis adds to a request.
 */
export const RATE_REDIS_TIMEOUT_MS = 500;

/**
 * After a Redis failure, how long (ms) requests are counted per process before Redis is tried
 * again, so that a stalled Redis costs one timeout per interval rather than one per request.
 * A reconnection ends it early.
 */
export const RATE_REDIS_RETRY_MS = 5_000;

/** Metadata key set by {@link SubmitRateLimit}. */
export const SUBMIT_ROUTE = 'gateway:submit-route';
/** Metadata key set by {@link SkipRateLimit}. */
export const SKIP_RATE_LIMIT = 'gateway:skip-rate-limit';

/**
 * Marks a route (or controller) as a job submission: besides RATE_LIMIT_PER_MINUTE it counts
 * against RATE_LIMIT_SUBMIT_PER_MINUTE, the stricter limit for work that costs engine time.
 */
export const SubmitRateLimit = () => SetMetadata(SUBMIT_ROUTE, true);

/** Exempts an authenticated route (or controller) from rate limiting. Public routes are never limited. */
export const SkipRateLimit = () => SetMetadata(SKIP_RATE_LIMIT, true);

/** One limit a request counts against. */
export interface RateBucket {
  /** `all` (every limited request) or `submit` (submissions). */
  name: 'all' | 'submit';
  /** Requests allowed per window (≥ 1). */
  limit: number;
}

/** Outcome of {@link SharedRateLimiter.take}. */
export interface RateDecision {
  allowed: boolean;
  /** The bucket that refused the request, or (when allowed) the one with the fewest requests left. */
  bucket: RateBucket;
  /** Requests left in that bucket's current window after this one (0 when refused). */
  remaining: number;
  /**
   * Whole seconds (≥ 1) until that bucket's window ends and its count starts again from zero:
   * the `Retry-After` value when refused, `X-RateLimit-Reset` either way.
   */
  resetSec: number;
  /**
   * `redis` when the decision came from the counts shared by every API process; `local` when
   * Redis was unreachable and this process's own counts decided (see {@link SharedRateLimiter}).
   */
  source: 'redis' | 'local';
}

/** How {@link SharedRateLimiter} reaches Redis and names its keys. */
export interface SharedRateLimiterOptions {
  /** `redis://[user:pass@]host:port[/db]` (REDIS_URL). */
  redisUrl: string;
  /** Namespace (QUEUE_PREFIX): counters live at `<prefix>:ratelimit:<bucket>:<client>`. */
  prefix: string;
  /** Window length in whole seconds (default {@link RATE_WINDOW_SEC}). */
  windowSec?: number;
  /** See {@link RATE_REDIS_TIMEOUT_MS}. */
  redisTimeoutMs?: number;
  /** See {@link RATE_REDIS_RETRY_MS}. */
  redisRetryMs?: number;
}

/** One bucket's count after a request was counted, or the refusal, and where it was counted. */
interface Counted {
  allowed: boolean;
  res: RateLimiterRes;
  store: RateLimiterAbstract;
  source: 'redis' | 'local';
}

/**
 * Fixed-window request counts per (client, bucket), kept in Redis so that every API process
 * shares them: N replicas together allow the configured limit, not N × it. Counting is
 * rate-limiter-flexible's RateLimiterRedis: one atomic Lua script per bucket increments the
 * counter and starts its window (a key with a TTL) at the first request, so concurrent
 * requests on different processes never both take the last place.
 *
 * A request counts against several buckets (a submission: `submit`, then `all`). When a later
 * bucket refuses it, the places it took in the earlier ones are given back, so a refused request
 * uses up no budget it was not granted. Over-limit attempts do not extend a window.
 *
 * When Redis cannot be reached (refused connection, or no answer within `redisTimeoutMs`) the
 * request is counted in this process's memory with the same limits (fail-open to per-process
 * limits: N replicas then allow up to N × the limit, as before counts were shared); a warning is
 * logged once per outage and an info line when Redis answers again. A request waits for Redis at
 * most `redisTimeoutMs` once: after a failure the remaining buckets, and the requests of the next
 * `redisRetryMs`, are counted locally. (A command that timed out may still reach a stalled Redis
 * when it resumes, and count there once more: the error is on the side of refusing.)
 */
export class SharedRateLimiter {
  private readonly logger = new Logger('RateLimit');
  private readonly redis: Redis;
  private readonly windowSec: number;
  private readonly redisRetryMs: number;
  private readonly shared = new Map<string, RateLimiterRedis>();
  private readonly local = new Map<string, RateLimiterMemory>();
  /** Epoch ms before which Redis is not asked (set after a failure, cleared on reconnection). */
  private redisSkipUntil = 0;
  private outage = false;

  constructor(private readonly options: SharedRateLimiterOptions) {
    this.windowSec = options.windowSec ?? RATE_WINDOW_SEC;
    this.redisRetryMs = options.redisRetryMs ?? RATE_REDIS_RETRY_MS;
    this.redis = new Redis({
      ...redisConnection(options.redisUrl),
      connectionName: 'rate-limit',
      lazyConnect: true,
      // Fail at once rather than queue while disconnected, and give up on a stalled server: a
      // request is decided locally instead of waiting (BullMQ's connections wait forever instead).
      enableOfflineQueue: false,
      commandTimeout: options.redisTimeoutMs ?? RATE_REDIS_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
    });
    this.redis.on('error', (err: Error) => this.redisFailed(err));
    this.redis.on('ready', () => {
      this.redisSkipUntil = 0;
    });
  }

  /** Redis key prefix of one bucket's counters. */
  keyPrefix(bucket: RateBucket['name']): string {
    return `${this.options.prefix}:ratelimit:${bucket}`;
  }

  /**
   * Connects to Redis, waiting at most `redisTimeoutMs` × 4: a gateway whose Redis is down still
   * starts (and counts locally) while ioredis keeps reconnecting in the background.
   */
  async connect(): Promise<void> {
    const limitMs = 4 * (this.options.redisTimeoutMs ?? RATE_REDIS_TIMEOUT_MS);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, limitMs);
      timer.unref();
    });
    // A failed first connection is reported through the 'error' event; ioredis retries by itself.
    await Promise.race([this.redis.connect().catch(() => undefined), timeout]);
    clearTimeout(timer);
  }

  /** Closes the Redis connection. */
  async close(): Promise<void> {
    this.redis.removeAllListeners('error');
    this.redis.on('error', () => undefined);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  /**
   * Counts one request of `client` against `buckets` (at least one, each limit ≥ 1). Accepted only
   * when every bucket has room; a refused request takes no place in any bucket.
   *
   * @param client who is limited: `key:<label>` or `ip:<address>`
   * @throws only on programming errors (a bucket with a limit below 1); Redis failures fall back to local counts
   */
  async take(client: string, buckets: RateBucket[]): Promise<RateDecision> {
    const taken: { bucket: RateBucket; counted: Counted }[] = [];
    for (const bucket of buckets) {
      const counted = await this.consume(bucket, client);
      if (!counted.allowed) {
        await Promise.all(taken.map((t) => t.counted.store.reward(client, 1).catch(() => undefined)));
        return { allowed: false, bucket, remaining: 0, resetSec: toSeconds(counted.res.msBeforeNext), source: counted.source };
      }
      taken.push({ bucket, counted });
    }
    const tightest = taken.reduce((a, b) => (b.counted.res.remainingPoints < a.counted.res.remainingPoints ? b : a));
    return {
      allowed: true,
      bucket: tightest.bucket,
      remaining: tightest.counted.res.remainingPoints,
      resetSec: toSeconds(tightest.counted.res.msBeforeNext),
      source: taken.some((t) => t.counted.source === 'local') ? 'local' : 'redis',
    };
  }

  private async consume(bucket: RateBucket, client: string): Promise<Counted> {
    if (Date.now() >= this.redisSkipUntil) {
      const store = this.limiter(this.shared, bucket, () => new RateLimiterRedis({ ...this.limits(bucket), storeClient: this.redis, rejectIfRedisNotReady: true }));
      try {
        const res = await store.consume(client, 1);
        this.redisAnswered();
        return { allowed: true, res, store, source: 'redis' };
      } catch (err) {
        if (err instanceof RateLimiterRes) {
          this.redisAnswered();
          return { allowed: false, res: err, store, source: 'redis' };
        }
        this.redisFailed(err);
      }
    }
    const store = this.limiter(this.local, bucket, () => new RateLimiterMemory(this.limits(bucket)));
    try {
      return { allowed: true, res: await store.consume(client, 1), store, source: 'local' };
    } catch (err) {
      if (err instanceof RateLimiterRes) return { allowed: false, res: err, store, source: 'local' };
      throw err;
    }
  }

  private limits(bucket: RateBucket) {
    return { points: bucket.limit, duration: this.windowSec, keyPrefix: this.keyPrefix(bucket.name) };
  }

  private limiter<T>(cache: Map<string, T>, bucket: RateBucket, create: () => T): T {
    const id = `${bucket.name}/${bucket.limit}`;
    let limiter = cache.get(id);
    if (!limiter) cache.set(id, (limiter = create()));
    return limiter;
  }

  private redisFailed(err: unknown): void {
    this.redisSkipUntil = Date.now() + this.redisRetryMs;
    if (this.outage) return;
    this.outage = true;
    this.logger.warn(`Redis unreachable for rate limits (${err instanceof Error ? err.message : String(err)}): counting per API process until it answers again`);
  }

  private redisAnswered(): void {
    if (!this.outage) return;
    this.outage = false;
    this.logger.log('Redis answers again: rate limits are shared by every API process again');
  }
}

/** Milliseconds to whole seconds, at least 1 (a `Retry-After` of 0 would invite an immediate retry). */
function toSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Response headers describing the limit that applies (sent on every limited response). */
export const RATE_LIMIT_HEADERS = ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Retry-After'] as const;

/**
 * Global guard: per-key rate limits (per client IP when authentication is off), shared by every
 * API process through Redis (see {@link SharedRateLimiter}).
 *
 * - every non-public route: RATE_LIMIT_PER_MINUTE requests per minute (0 = off)
 * - routes marked {@link SubmitRateLimit}: also RATE_LIMIT_SUBMIT_PER_MINUTE (0 = off)
 *
 * Over a limit → AccessError RATE_LIMITED, rendered by the error filters as 429
 * `{statusCode: 429, error, code: 'RATE_LIMITED', message, limit, retry_after}`, with
 * `Retry-After: <seconds>` set here. Limited responses carry `X-RateLimit-Limit`,
 * `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds) of the tightest limit. An SSE stream
 * counts once, when it is opened. Requests without a valid key are not counted here: ApiKeyGuard
 * answers them 401/403.
 */
@Injectable()
export class RateLimitGuard implements CanActivate, OnModuleInit, OnModuleDestroy {
  constructor(
    private readonly config: AppConfig,
    private readonly keys: ApiKeys,
    private readonly reflector: Reflector,
    private readonly limiter: SharedRateLimiter,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.config.RATE_LIMIT_PER_MINUTE > 0 || this.config.RATE_LIMIT_SUBMIT_PER_MINUTE > 0) await this.limiter.connect();
  }

  async onModuleDestroy(): Promise<void> {
    await this.limiter.close();
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http' || isPublicRoute(this.reflector, context)) return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean | undefined>(SKIP_RATE_LIMIT, targets)) return true;
    // The stricter submit bucket first: when it refuses, the general one is never touched.
    const buckets: RateBucket[] = [];
    if (this.config.RATE_LIMIT_SUBMIT_PER_MINUTE > 0 && this.reflector.getAllAndOverride<boolean | undefined>(SUBMIT_ROUTE, targets)) {
      buckets.push({ name: 'submit', limit: this.config.RATE_LIMIT_SUBMIT_PER_MINUTE });
    }
    if (this.config.RATE_LIMIT_PER_MINUTE > 0) buckets.push({ name: 'all', limit: this.config.RATE_LIMIT_PER_MINUTE });
    if (buckets.length === 0) return true;

    const req = context.switchToHttp().getRequest<Request>();
    const check = this.keys.check(req.headers);
    // Identified here rather than read from ApiKeyGuard's result, so the order of global guards does not matter.
    let client: string;
    if (check.status === 'valid') client = `key:${check.label}`;
    else if (check.status === 'open') client = `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
    else return true;

    const decision = await this.limiter.take(client, buckets);
    const res = context.switchToHttp().getResponse<Response>();
    res.setHeader('X-RateLimit-Limit', String(decision.bucket.limit));
    res.setHeader('X-RateLimit-Remaining', String(decision.remaining));
    res.setHeader('X-RateLimit-Reset', String(decision.resetSec));
    if (decision.allowed) return true;
    res.setHeader('Retry-After', String(decision.resetSec));
    const what = decision.bucket.name === 'submit' ? 'job submissions' : 'requests';
    throw new AccessError('RATE_LIMITED', `rate limit of ${decision.bucket.limit} ${what} per minute reached; retry after ${decision.resetSec} s`, {
      limit: decision.bucket.limit,
      retry_after: decision.resetSec,
    });
  }
}
