/**
 * SharedRateLimiter against the test Redis (REDIS_URL of scripts/test.sh): the counts, windows
 * and bucket rules the RateLimitGuard relies on, shared between limiters on separate connections
 * as between API replicas, and the per-process fallback when Redis cannot be reached.
 */
import { ConsoleLogger, Logger, type LoggerService } from '@nestjs/common';
import { Redis } from 'ioredis';
import net from 'node:net';
import { SharedRateLimiter, type RateBucket } from '../../src/auth/throttle.js';
import { TEST_REDIS_URL } from '../support/env.js';

const all = (limit: number): RateBucket => ({ name: 'all', limit });
const submit = (limit: number): RateBucket => ({ name: 'submit', limit });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Log lines Nest's Logger writes while installed (Logger.overrideLogger). */
class Captured implements LoggerService {
  readonly lines: string[] = [];
  log(message: unknown) {
    this.lines.push(`log ${String(message)}`);
  }
  warn(message: unknown) {
    this.lines.push(`warn ${String(message)}`);
  }
  error(message: unknown) {
    this.lines.push(`error ${String(message)}`);
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on (the kernel's choice, released at once). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('SharedRateLimiter (Redis)', () => {
  const prefix = `test-rl-${Math.random().toString(36).slice(2, 8)}`;
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true });
  const open: SharedRateLimiter[] = [];

  async function limiter(options: { windowSec?: number; redisUrl?: string; redisRetryMs?: number } = {}): Promise<SharedRateLimiter> {
    const l = new SharedRateLimiter({ redisUrl: TEST_REDIS_URL, prefix, ...options });
    open.push(l);
    await l.connect();
    return l;
  }

  beforeAll(() => redis.connect());
  afterAll(async () => {
    await Promise.all(open.map((l) => l.close()));
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it('accepts `limit` requests per window, then refuses with the seconds until the window ends', async () => {
    const l = await limiter();
    const taken = [];
    for (let i = 0; i < 3; i++) taken.push(await l.take('key:a', [all(3)]));
    expect(taken.map((d) => [d.allowed, d.remaining, d.source])).toEqual([
      [true, 2, 'redis'],
      [true, 1, 'redis'],
      [true, 0, 'redis'],
    ]);
    expect(taken[0].resetSec).toBe(60);
    const refused = await l.take('key:a', [all(3)]);
    expect(refused).toMatchObject({ allowed: false, bucket: all(3), remaining: 0, source: 'redis' });
    expect(refused.resetSec).toBeGreaterThanOrEqual(1);
    expect(refused.resetSec).toBeLessThanOrEqual(60);
  });

  it('keeps its counters under <QUEUE_PREFIX>:ratelimit:<bucket>:<client>, expiring with the window', async () => {
    const l = await limiter();
    await l.take('key:ttl', [submit(2), all(5)]);
    expect((await redis.keys(`${prefix}:ratelimit:*:key:ttl`)).sort()).toEqual([`${prefix}:ratelimit:all:key:ttl`, `${prefix}:ratelimit:submit:key:ttl`]);
    const ttl = await redis.pttl(`${prefix}:ratelimit:all:key:ttl`);
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('starts counting again when the window ends; refused attempts do not extend it', async () => {
    const l = await limiter({ windowSec: 1 });
    expect((await l.take('key:w', [all(2)])).allowed).toBe(true);
    expect((await l.take('key:w', [all(2)])).allowed).toBe(true);
    for (let i = 0; i < 5; i++) expect(await l.take('key:w', [all(2)])).toMatchObject({ allowed: false, resetSec: 1 });
    await sleep(1_100);
    expect(await l.take('key:w', [all(2)])).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('keeps clients apart', async () => {
    const l = await limiter();
    expect((await l.take('key:c1', [all(1)])).allowed).toBe(true);
    expect((await l.take('key:c1', [all(1)])).allowed).toBe(false);
    expect((await l.take('key:c2', [all(1)])).allowed).toBe(true);
    expect((await l.take('ip:127.0.0.1', [all(1)])).allowed).toBe(true);
  });

  it('counts a submission in both buckets, and a refused one in neither', async () => {
    const l = await limiter();
    expect(await l.take('key:s', [submit(2), all(5)])).toMatchObject({ allowed: true, bucket: submit(2), remaining: 1 });
    expect(await l.take('key:s', [submit(2), all(5)])).toMatchObject({ allowed: true, bucket: submit(2), remaining: 0 });
    expect(await l.take('key:s', [submit(2), all(5)])).toMatchObject({ allowed: false, bucket: submit(2) });
    // Two submissions were counted against `all`; the refused one was not.
    expect(await l.take('key:s', [all(5)])).toMatchObject({ allowed: true, remaining: 2 });

    // Refused by the general limit after the submit limit took a place: that place is given back.
    expect((await l.take('key:g', [submit(3), all(1)])).allowed).toBe(true);
    expect(await l.take('key:g', [submit(3), all(1)])).toMatchObject({ allowed: false, bucket: all(1) });
    expect(await redis.get(`${prefix}:ratelimit:submit:key:g`)).toBe('1');
  });

  it('shares the counts between limiters on separate connections, as between API replicas', async () => {
    const replicas = [await limiter(), await limiter()];
    // 30 concurrent requests, alternating between the two: exactly the limit gets through.
    const decisions = await Promise.all(Array.from({ length: 30 }, (_, i) => replicas[i % 2].take('key:shared', [all(10)])));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
    expect(decisions.filter((d) => !d.allowed).every((d) => d.resetSec >= 1 && d.resetSec <= 60)).toBe(true);
    expect(decisions.every((d) => d.source === 'redis')).toBe(true);
  });

  describe('when Redis cannot be reached', () => {
    const captured = new Captured();
    beforeAll(() => Logger.overrideLogger(captured));
    afterAll(() => Logger.overrideLogger(new ConsoleLogger()));

    it('starts without waiting for it, decides at once from per-process counts, and warns once', async () => {
      const started = Date.now();
      const l = await limiter({ redisUrl: `redis://127.0.0.1:${await closedPort()}` });
      expect(Date.now() - started).toBeLessThan(2_500);

      const timed = Date.now();
      const decisions = [];
      for (let i = 0; i < 4; i++) decisions.push(await l.take('key:down', [submit(2), all(10)]));
      expect(Date.now() - timed).toBeLessThan(500);
      // Limits still hold, per process.
      expect(decisions.map((d) => [d.allowed, d.source])).toEqual([
        [true, 'local'],
        [true, 'local'],
        [false, 'local'],
        [false, 'local'],
      ]);
      expect(decisions[2]).toMatchObject({ bucket: submit(2), remaining: 0 });

      const warnings = captured.lines.filter((line) => line.startsWith('warn') && line.includes('Redis unreachable for rate limits'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('counting per API process');
    });
  });
});
