/**
 * Fault: Redis killed and restarted (AOF, fsync on every write) and PostgreSQL crashed
 * (`pg_ctl stop -m immediate`) and restarted, against real gateway processes.
 *
 * 1. Jobs queued with no worker running survive both restarts; the API process stays up and
 *    answers again once its connections are back; a worker started afterwards completes every job once.
 * 2. The same restarts while a worker is busy with a queue of jobs: every job still completes once.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fixture } from '../support/env.js';
import { getJson, submit } from '../support/http.js';
import { cutClip, FaultHarness, GiveUp, waitFor, type GatewayProcess } from '../support/processes.js';
import { wordErrorRate } from '../support/wer.js';

interface StatusView { job_id: string; status: string; worker_id: string | null; transcript_id: string }
interface JobRow { job_id: string; status: string; attempts: number; worker_id: string | null; completed_at: Date | null; error_details: unknown; text: string | null }

const JOBS_SQL = `SELECT j.job_id, t.status, j.attempts, j.worker_id, j.completed_at, j.error_details, t.text
  FROM transcript_jobs j JOIN transcripts t ON t.id = j.transcript_id WHERE t.session_id = $1`;

/** GET /status for every id; null while any answer is not 200 (the API is still reconnecting). */
async function statuses(api: GatewayProcess, ids: string[]): Promise<StatusView[] | null> {
  const views: StatusView[] = [];
  for (const id of ids) {
    const res = await getJson<StatusView>(`${api.url}/api/transcribe/jobs/status/${id}`).catch(() => null);
    if (!res || res.status !== 200) return null;
    views.push(res.body);
  }
  return views;
}

const healthy = async (api: GatewayProcess) => (await fetch(`${api.url}/health`).catch(() => null))?.status === 200;

describe('faults: Redis and PostgreSQL restarts (real processes)', () => {
  let h: FaultHarness;
  let api: GatewayProcess;
  let clip: string;
  let reference: string;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    h = await FaultHarness.create('restarts');
    // The product's default backoff (2 s, doubled): a job that hits the outage is retried after it.
    api = await h.startGateway({ role: 'api', name: 'api', env: { JOB_BACKOFF_MS: '2000' } });
    clip = cutClip(fixture('goforward.wav'), path.join(h.root, 'goforward.wav'), 2.79);
    reference = 'go forward ten meters';
  }, 240_000);

  afterAll(async () => {
    console.log(`restart timings (ms): ${JSON.stringify(timings)}`);
    await h?.cleanup();
  });

  it('keeps 10 queued jobs through a Redis kill and a PostgreSQL crash; a worker started afterwards completes each exactly once', async () => {
    const session = randomUUID();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const { status, body } = await submit(api.url, clip, { session_id: session });
      expect(status).toBe(202);
      ids.push(body.job_id as string);
    }
    expect((await statuses(api, ids))!.map((s) => s.status)).toEqual(Array(10).fill('queued'));

    // Redis: SIGKILL (no shutdown save) and start again on the same port and AOF directory.
    let t = Date.now();
    timings.redis_restart = await h.redis.restart('SIGKILL');
    const afterRedis = await waitFor('the API to read job states from the restarted Redis', () => statuses(api, ids), 60_000);
    timings.api_status_after_redis = Date.now() - t;
    expect(afterRedis.map((s) => s.status)).toEqual(Array(10).fill('queued'));
    // Queued in Redis itself, not only in Postgres (the status endpoint falls back to Postgres):
    // BullMQ keeps jobs with a priority (fair scheduling, docs/scheduling.md) in the `prioritized`
    // sorted set and the others in the `wait` list.
    const waiting = [
      ...((await h.redis.command('LRANGE', `${h.shared.QUEUE_PREFIX}:transcription:wait`, 0, -1)) as string[]),
      ...((await h.redis.command('ZRANGE', `${h.shared.QUEUE_PREFIX}:transcription:prioritized`, 0, -1)) as string[]),
    ];
    expect(waiting.sort()).toEqual([...ids].sort());
    expect(api.exit).toBeUndefined();

    // PostgreSQL: immediate shutdown (a crash: WAL replay at the next start), then start again.
    t = Date.now();
    timings.postgres_restart = await h.postgres.restart('immediate');
    await waitFor('GET /health to answer 200 after the PostgreSQL restart', () => healthy(api), 60_000);
    timings.api_health_after_postgres = Date.now() - t;
    expect(api.exit).toBeUndefined();

    // The write path (storage, both tables in one transaction, BullMQ add) works again too.
    const late = await waitFor('a submission to be accepted after both restarts', async () => {
      const res = await submit(api.url, clip, { session_id: session });
      return res.status === 202 ? (res.body.job_id as string) : null;
    }, 60_000, 500);
    ids.push(late);

    t = Date.now();
    const worker = await h.startGateway({ role: 'worker', name: 'worker', env: { WORKER_CONCURRENCY: '2' } });
    const rows = await waitFor('11 completed transcripts', async () => {
      const r = await h.postgres.query<JobRow>(JOBS_SQL, [session]);
      return r.filter((x) => x.status === 'completed').length === 11 ? r : null;
    }, 180_000, 500);
    timings.worker_drain_11_jobs = Date.now() - t;

    expect(new Set(rows.map((r) => r.job_id))).toEqual(new Set(ids));
    for (const row of rows) {
      expect(row.attempts).toBe(1);
      expect(row.worker_id).toBe(worker.workerId);
      expect(row.completed_at).not.toBeNull();
      expect(row.error_details).toBeNull();
    }
    expect(wordErrorRate(rows.map((r) => ({ reference, hypothesis: r.text ?? '' })))).toBeLessThan(0.3);
    const final = await statuses(api, ids);
    expect(final!.map((s) => s.status)).toEqual(Array(11).fill('completed'));
    expect(api.exit).toBeUndefined();
    expect(worker.exit).toBeUndefined();
    await worker.kill('SIGTERM');
  }, 420_000);

  it('completes every job exactly once when Redis and PostgreSQL restart while a worker is busy', async () => {
    const session = randomUUID();
    const worker = await h.startGateway({ role: 'worker', name: 'busy-worker', env: { WORKER_CONCURRENCY: '1' } });
    const long = fixture('libri_0870.wav');
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const { status, body } = await submit(api.url, long, { session_id: session });
      expect(status).toBe(202);
      ids.push(body.job_id as string);
    }
    const done = async () => (await h.postgres.query<JobRow>(JOBS_SQL, [session])).filter((r) => r.status === 'completed').length;
    await waitFor('the first job to complete', async () => (await done()) >= 1, 120_000, 200);

    timings.busy_redis_restart = await h.redis.restart('SIGKILL');
    await waitFor('two more jobs to complete after the Redis restart', async () => (await done().catch(() => 0)) >= 3, 120_000, 200);
    const before = await done();
    expect(before).toBeLessThan(10);
    timings.busy_postgres_restart = await h.postgres.restart('immediate');

    const rows = await waitFor('10 completed transcripts', async () => {
      const r = await h.postgres.query<JobRow>(JOBS_SQL, [session]);
      return r.filter((x) => x.status === 'completed').length === 10 ? r : null;
    }, 300_000, 500);
    expect(new Set(rows.map((r) => r.job_id))).toEqual(new Set(ids));
    for (const row of rows) {
      expect(row.completed_at).not.toBeNull();
      expect(row.worker_id).toBe(worker.workerId);
    }
    console.log(`busy worker: attempts per job ${JSON.stringify(rows.map((r) => r.attempts))}; errors recorded ${JSON.stringify(rows.filter((r) => r.error_details).map((r) => r.error_details))}`);
    const final = await waitFor('every status to read completed', () => statuses(api, ids), 60_000);
    expect(final.map((s) => s.status)).toEqual(Array(10).fill('completed'));
    expect(api.exit).toBeUndefined();
    expect(worker.exit).toBeUndefined();
    await worker.kill('SIGTERM');
  }, 600_000);

  it('loses no job to a PostgreSQL outage longer than the retry backoff while a worker is busy', async () => {
    const session = randomUUID();
    const worker = await h.startGateway({ role: 'worker', name: 'outage-worker', env: { WORKER_CONCURRENCY: '1' } });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const { status, body } = await submit(api.url, clip, { session_id: session });
      expect(status).toBe(202);
      ids.push(body.job_id as string);
    }
    await waitFor('the first job to complete', async () => (await h.postgres.query<JobRow>(JOBS_SQL, [session])).some((r) => r.status === 'completed'), 120_000, 200);

    // Down for longer than 1 + JOB_MAX_RETRIES attempts with the default backoff take (2 + 4 + 8 s).
    h.postgres.stop('immediate');
    await new Promise((r) => setTimeout(r, 30_000));
    const t = Date.now();
    await h.postgres.start();

    const rows = await waitFor('10 completed transcripts after the outage', async () => {
      const failed = (await statuses(api, ids))?.filter((s) => s.status === 'failed') ?? [];
      if (failed.length) throw new GiveUp(`${failed.length} jobs failed for good during the outage: ${JSON.stringify(failed[0])}`);
      const r = await h.postgres.query<JobRow>(JOBS_SQL, [session]);
      return r.filter((x) => x.status === 'completed').length === 10 ? r : null;
    }, 180_000, 500);
    timings.outage_drain_after_postgres_back = Date.now() - t;
    for (const row of rows) expect(row.error_details).toBeNull();
    const final = await statuses(api, ids);
    expect(final!.map((s) => s.status)).toEqual(Array(10).fill('completed'));
    expect(worker.exit).toBeUndefined();
    await worker.kill('SIGTERM');
  }, 600_000);
});
