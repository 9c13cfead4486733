import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { ConfigModule } from '../../src/config/config.module.js';
import { dataSourceOptions } from '../../src/database/data-source.js';
import { IdempotencyError } from '../../src/idempotency/idempotency.errors.js';
import { IdempotencyModule } from '../../src/idempotency/idempotency.module.js';
import { IdempotencyService, STALE_CLAIM_SEC, type IdempotencyClaim } from '../../src/idempotency/idempotency.service.js';
import { TEST_DATABASE_URL, testConfig } from '../support/env.js';

const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

describe('IdempotencyService (Postgres)', () => {
  let app: INestApplication;
  let idem: IdempotencyService;
  let db: DataSource;
  // Every test uses its own scope, so runs never see each other's keys in the shared database.
  let scope: string;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [ConfigModule.forRoot(testConfig({ IDEMPOTENCY_TTL_HOURS: '24' })), TypeOrmModule.forRoot(dataSourceOptions(TEST_DATABASE_URL)), IdempotencyModule],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    idem = app.get(IdempotencyService);
    db = app.get(DataSource);
  });
  beforeEach(() => {
    scope = `test-${randomUUID()}`;
  });
  afterAll(async () => {
    await db?.query(`DELETE FROM idempotency_keys WHERE scope LIKE 'test-%'`);
    await app?.close();
  });

  const fresh = async (key: string, hash: string): Promise<IdempotencyClaim> => {
    const begun = await idem.begin(scope, key, hash);
    if (begun.outcome !== 'fresh') throw new Error(`expected fresh, got ${JSON.stringify(begun)}`);
    return begun.claim;
  };
  /** Moves a row's creation time into the past, as if it had been made `seconds` ago. */
  const age = (key: string, seconds: number) =>
    db.query(`UPDATE idempotency_keys SET created_at = now() - make_interval(secs => $3) WHERE scope = $1 AND key = $2`, [scope, key, seconds]);

  it('fresh → complete → replay for the same body; 409 KEY_REUSED for another body', async () => {
    const claim = await fresh('k1', HASH_A);
    const response = { job_id: randomUUID(), transcript_id: randomUUID(), engine: 'pocketsphinx', status: 'queued', message: 'queued' };
    expect(await idem.complete(claim, response)).toBe(true);

    expect(await idem.begin(scope, 'k1', HASH_A)).toEqual({ outcome: 'replay', response, jobId: response.job_id });
    expect(await idem.begin(scope, 'k1', HASH_B)).toEqual({ outcome: 'conflict', code: 'IDEMPOTENCY_KEY_REUSED' });
    // Keys live in their scope: another API key may use the same one.
    expect((await idem.begin(`${scope}-other`, 'k1', HASH_B)).outcome).toBe('fresh');
    const [row] = await db.query(`SELECT job_id, request_hash FROM idempotency_keys WHERE scope = $1 AND key = 'k1'`, [scope]);
    expect(row).toEqual({ job_id: response.job_id, request_hash: HASH_A });
  });

  it('answers IDEMPOTENCY_IN_PROGRESS while the first request is in flight (same body), KEY_REUSED for another body', async () => {
    await fresh('k2', HASH_A);
    expect(await idem.begin(scope, 'k2', HASH_A)).toEqual({ outcome: 'conflict', code: 'IDEMPOTENCY_IN_PROGRESS' });
    expect(await idem.begin(scope, 'k2', HASH_B)).toEqual({ outcome: 'conflict', code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('abandon releases the key so that the client can retry, even with a corrected body', async () => {
    const claim = await fresh('k3', HASH_A);
    await idem.abandon(claim);
    const again = await fresh('k3', HASH_B);
    expect(again.lease).not.toBe('');
    // A completed key is not removed by a late abandon.
    await idem.complete(again, { job_id: 'j3' });
    await idem.abandon(again);
    expect((await idem.begin(scope, 'k3', HASH_B)).outcome).toBe('replay');
  });

  it('ignores and replaces keys older than IDEMPOTENCY_TTL_HOURS, and purges them', async () => {
    const claim = await fresh('k4', HASH_A);
    await idem.complete(claim, { job_id: 'old-job' });
    await age('k4', 23 * 3600);
    expect((await idem.begin(scope, 'k4', HASH_B)).outcome).toBe('conflict');
    await age('k4', 24 * 3600 + 5);
    // Expired: a different body may now use the key, and the old response is gone.
    const renewed = await fresh('k4', HASH_B);
    await idem.complete(renewed, { job_id: 'new-job' });
    expect(await idem.begin(scope, 'k4', HASH_B)).toMatchObject({ outcome: 'replay', jobId: 'new-job' });

    await fresh('k5', HASH_A);
    await age('k5', 25 * 3600);
    expect(await idem.purgeExpired()).toBeGreaterThanOrEqual(1);
    const left = await db.query(`SELECT key FROM idempotency_keys WHERE scope = $1 ORDER BY key`, [scope]);
    expect(left).toEqual([{ key: 'k4' }]);
  });

  it('lets a new request take over a claim left in flight for longer than STALE_CLAIM_SEC; the old claim can then no longer complete', async () => {
    const stale = await fresh('k6', HASH_A);
    await age('k6', STALE_CLAIM_SEC - 60);
    expect(await idem.begin(scope, 'k6', HASH_A)).toEqual({ outcome: 'conflict', code: 'IDEMPOTENCY_IN_PROGRESS' });
    await age('k6', STALE_CLAIM_SEC + 1);
    // The aged row is still the old request's claim: give it the lease it now has.
    const [{ lease }] = await db.query(`SELECT created_at::text AS lease FROM idempotency_keys WHERE scope = $1 AND key = 'k6'`, [scope]);
    const old: IdempotencyClaim = { ...stale, lease };
    const taken = await fresh('k6', HASH_A);
    expect(taken.lease).not.toBe(lease);
    expect(await idem.complete(old, { job_id: 'lost' })).toBe(false);
    await idem.abandon(old);
    expect(await idem.complete(taken, { job_id: 'kept' })).toBe(true);
    expect(await idem.begin(scope, 'k6', HASH_A)).toMatchObject({ outcome: 'replay', jobId: 'kept' });
  });

  it('gives exactly one of many concurrent requests with one key the claim', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, () => idem.begin(scope, 'race', HASH_A)));
    expect(results.filter((r) => r.outcome === 'fresh')).toHaveLength(1);
    expect(results.filter((r) => r.outcome === 'conflict' && r.code === 'IDEMPOTENCY_IN_PROGRESS')).toHaveLength(11);

    // The same race on an expired key: still one winner.
    await age('race', 48 * 3600);
    const again = await Promise.all(Array.from({ length: 12 }, (_, i) => idem.begin(scope, 'race', i % 2 ? HASH_A : HASH_B)));
    expect(again.filter((r) => r.outcome === 'fresh')).toHaveLength(1);
  });

  it('execute(): runs the work once, replays it, abandons on failure and rejects reuse with IdempotencyError', async () => {
    let runs = 0;
    const work = async () => ({ job_id: `job-${++runs}`, status: 'queued' as const });
    expect(await idem.execute(scope, 'x1', HASH_A, work)).toEqual({ response: { job_id: 'job-1', status: 'queued' }, replayed: false });
    expect(await idem.execute(scope, 'x1', HASH_A, work)).toEqual({ response: { job_id: 'job-1', status: 'queued' }, replayed: true });
    expect(runs).toBe(1);
    await expect(idem.execute(scope, 'x1', HASH_B, work)).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });

    await expect(idem.execute(scope, 'x2', HASH_A, async () => { throw new Error('probe failed'); })).rejects.toThrow('probe failed');
    expect(await idem.execute(scope, 'x2', HASH_A, work)).toEqual({ response: { job_id: 'job-2', status: 'queued' }, replayed: false });

    // A concurrent duplicate while the first is still working.
    let release!: () => void;
    let started!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const working = new Promise<void>((r) => { started = r; });
    const first = idem.execute(scope, 'x3', HASH_A, async () => { started(); await gate; return work(); });
    await working;
    const duplicate = await idem.execute(scope, 'x3', HASH_A, work).catch((e: unknown) => e);
    expect(duplicate).toBeInstanceOf(IdempotencyError);
    expect(duplicate).toMatchObject({ code: 'IDEMPOTENCY_IN_PROGRESS', status: 409, retryable: true, publicFields: { retry_after_sec: 1 } });
    release();
    expect((await first).replayed).toBe(false);
    expect(runs).toBe(3);
  });
});
