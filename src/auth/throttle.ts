import { Injectable, SetMetadata, type CanActivate, type ExecutionContext, type OnModuleDestroy } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import { AccessError } from './access.errors.js';
import { isPublicRoute } from './api-key.guard.js';
import { ApiKeys } from './api-keys.js';

/** Length of the rate-limit window: limits are per minute. */
export const RATE_WINDOW_MS = 60_000;

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
  /** Requests allowed per window. */
  limit: number;
}

/** Outcome of {@link SlidingWindowLimiter.take}. */
export interface RateDecision {
  allowed: boolean;
  /** The bucket that refused the request, or (when allowed) the one with the fewest requests left. */
  bucket: RateBucket;
  /** Requests left in that bucket after this one. */
  remaining: number;
  /**
   * Whole seconds (≥ 1) until that bucket accepts a request again: the `Retry-After` value when
   * refused; when allowed, when its oldest counted request leaves the window.
   */
  resetSec: number;
}

/**
 * Sliding-window log per (client, bucket): the times of the requests accepted in the last
 * window. A request is accepted when every bucket it counts against has room, and is then
 * counted in all of them; a refused request counts nowhere, so a client that keeps retrying
 * is let in again as soon as its oldest request leaves the window.
 *
 * In memory, per API process: with N API replicas a client gets up to N × the limit. The
 * clock is injectable so the window can be tested without waiting.
 */
export class SlidingWindowLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(
    readonly windowMs = RATE_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Counts one request of `client` against `buckets` (at least one).
   *
   * @param client who is limited: `key:<label>` or `ip:<address>`
   */
  take(client: string, buckets: RateBucket[]): RateDecision {
    const now = this.now();
    const states = buckets.map((bucket) => ({ bucket, log: this.live(`${bucket.name}|${client}`, now) }));
    const resetOf = (log: number[], limit: number) => {
      // Oldest of the `limit` most recent entries: once it leaves the window there is room again.
      const oldest = log.length >= limit ? log[log.length - limit] : log[0];
      return oldest === undefined ? Math.ceil(this.windowMs / 1000) : Math.max(1, Math.ceil((oldest + this.windowMs - now) / 1000));
    };
    const full = states.find((s) => s.log.length >= s.bucket.limit);
    if (full) return { allowed: false, bucket: full.bucket, remaining: 0, resetSec: resetOf(full.log, full.bucket.limit) };
    for (const s of states) {
      s.log.push(now);
      this.hits.set(`${s.bucket.name}|${client}`, s.log);
    }
    const tightest = states.reduce((a, b) => (b.bucket.limit - b.log.length < a.bucket.limit - a.log.length ? b : a));
    return { allowed: true, bucket: tightest.bucket, remaining: tightest.bucket.limit - tightest.log.length, resetSec: resetOf(tightest.log, tightest.bucket.limit) };
  }

  /** Drops clients with no request in the window (memory stays bounded by the active clients). */
  sweep(): void {
    const now = this.now();
    for (const key of [...this.hits.keys()]) this.live(key, now);
  }

  /** Number of (client, bucket) entries held. */
  get size(): number {
    return this.hits.size;
  }

  /** The entries of `key` still inside the window (older ones removed; empty logs forgotten). */
  private live(key: string, now: number): number[] {
    const log = this.hits.get(key);
    if (!log) return [];
    let expired = 0;
    while (expired < log.length && log[expired]! <= now - this.windowMs) expired++;
    if (expired > 0) log.splice(0, expired);
    if (log.length === 0) this.hits.delete(key);
    return log;
  }
}

/** Response headers describing the limit that applies (sent on every limited response). */
export const RATE_LIMIT_HEADERS = ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Retry-After'] as const;

/**
 * Global guard: per-key rate limits (per client IP when authentication is off).
 *
 * - every non-public route: RATE_LIMIT_PER_MINUTE requests per minute (0 = off)
 * - routes marked {@link SubmitRateLimit}: also RATE_LIMIT_SUBMIT_PER_MINUTE (0 = off)
 *
 * Over a limit → 429 `{statusCode: 429, error, code: 'RATE_LIMITED', message, limit, retry_after}`
 * with `Retry-After: <seconds>`. Accepted responses carry `X-RateLimit-Limit`,
 * `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds) of the tightest limit. An SSE stream
 * counts once, when it is opened. Requests without a valid key are not counted here: ApiKeyGuard
 * answers them 401/403.
 */
@Injectable()
export class RateLimitGuard implements CanActivate, OnModuleDestroy {
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly config: AppConfig,
    private readonly keys: ApiKeys,
    private readonly reflector: Reflector,
    private readonly limiter: SlidingWindowLimiter,
  ) {
    this.sweeper = setInterval(() => this.limiter.sweep(), limiter.windowMs);
    this.sweeper.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweeper);
  }

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http' || isPublicRoute(this.reflector, context)) return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean | undefined>(SKIP_RATE_LIMIT, targets)) return true;
    const buckets: RateBucket[] = [];
    if (this.config.RATE_LIMIT_PER_MINUTE > 0) buckets.push({ name: 'all', limit: this.config.RATE_LIMIT_PER_MINUTE });
    if (this.config.RATE_LIMIT_SUBMIT_PER_MINUTE > 0 && this.reflector.getAllAndOverride<boolean | undefined>(SUBMIT_ROUTE, targets)) {
      buckets.push({ name: 'submit', limit: this.config.RATE_LIMIT_SUBMIT_PER_MINUTE });
    }
    if (buckets.length === 0) return true;

    const req = context.switchToHttp().getRequest<Request>();
    const check = this.keys.check(req.headers);
    // Identified here rather than read from ApiKeyGuard's result, so the order of global guards does not matter.
    let client: string;
    if (check.status === 'valid') client = `key:${check.label}`;
    else if (check.status === 'open') client = `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
    else return true;

    const decision = this.limiter.take(client, buckets);
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
