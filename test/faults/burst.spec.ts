/**
 * Load fault: a burst of 1,000 short jobs through HTTP (20 requests in flight) against one API
 * process and two worker processes (WORKER_CONCURRENCY=2 each). Every job must complete exactly
 * once: 1,000 distinct job ids, 1,000 transcripts for the run's session, none failed, each job
 * completed by exactly one worker run, and each transcript the text of its own clip (two different
 * clips alternate, so a mix-up between jobs would show).
 *
 * FAULTS_BURST_JOBS overrides the number of jobs (e.g. for a quick local run).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fixture } from '../support/env.js';
import { getJson, submit } from '../support/http.js';
import { cutClip, FaultHarness, GiveUp, mapLimit, waitFor, type GatewayProcess } from '../support/processes.js';

const JOBS = Number(process.env.FAULTS_BURST_JOBS ?? 1000);
const IN_FLIGHT = 20;

interface Row { job_id: string; status: string; attempts: number; worker_id: string | null; completed_at: Date | null; error_details: unknown; text: string | null; filename: string }

describe(`faults: a burst of ${JOBS} short jobs (real processes)`, () => {
  let h: FaultHarness;
  let api: GatewayProcess;
  const workers: GatewayProcess[] = [];
  const measured: Record<string, number | string> = {};

  beforeAll(async () => {
    h = await FaultHarness.create('burst');
    api = await h.startGateway({ role: 'api', name: 'api' });
    for (const name of ['worker-1', 'worker-2']) workers.push(await h.startGateway({ role: 'worker', name, env: { WORKER_CONCURRENCY: '2' } }));
  }, 240_000);

  afterAll(async () => {
    console.log(`burst (${JOBS} jobs): ${JSON.stringify(measured)}`);
    await h?.cleanup();
  });

  it(`completes all ${JOBS} jobs exactly once, none lost, none failed, none mixed up`, async () => {
    // One second of two different recordings: pocketsphinx gives each its own (deterministic) text.
    const clips = [
      cutClip(fixture('goforward.wav'), path.join(h.root, 'burst-a.wav'), 1.0),
      cutClip(fixture('tidigits_2934z.wav'), path.join(h.root, 'burst-b.wav'), 1.0),
    ];
    const session = randomUUID();
    const started = Date.now();

    const submitted = await mapLimit(Array.from({ length: JOBS }, (_, i) => i), IN_FLIGHT, async (i) => {
      const { status, body } = await submit(api.url, clips[i % 2], { session_id: session });
      if (status !== 202) throw new Error(`submission ${i} answered ${status}: ${JSON.stringify(body)}`);
      return { jobId: body.job_id as string, clip: i % 2 };
    });
    measured.submit_s = (Date.now() - started) / 1000;
    const ids = submitted.map((s) => s.jobId);
    expect(new Set(ids).size).toBe(JOBS);

    let lastLog = 0;
    await waitFor(`${JOBS} completed transcripts`, async () => {
      const counts = await h.postgres.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM transcripts WHERE session_id = $1 GROUP BY status', [session]);
      const by = Object.fromEntries(counts.map((c) => [c.status, Number(c.n)]));
      if (by.failed) throw new GiveUp(`${by.failed} transcripts failed`);
      if (Date.now() - lastLog > 60_000) {
        lastLog = Date.now();
        console.log(`burst progress after ${Math.round((Date.now() - started) / 1000)} s: ${JSON.stringify(by)}`);
      }
      return by.completed === JOBS;
    }, 50 * 60_000, 2000);
    measured.all_completed_s = (Date.now() - started) / 1000;
    measured.jobs_per_s = Number((JOBS / (measured.all_completed_s)).toFixed(2));

    const rows = await h.postgres.query<Row>(
      `SELECT j.job_id, t.status, j.attempts, j.worker_id, j.completed_at, j.error_details, t.text, t.filename
         FROM transcripts t JOIN transcript_jobs j ON j.transcript_id = t.id WHERE t.session_id = $1`, [session]);
    expect(rows).toHaveLength(JOBS);
    expect(new Set(rows.map((r) => r.job_id))).toEqual(new Set(ids));
    for (const row of rows) {
      expect(row.status).toBe('completed');
      expect(row.attempts).toBeGreaterThanOrEqual(1);
      expect(row.completed_at).not.toBeNull();
      expect(row.error_details).toBeNull();
    }
    const attempts: Record<number, number> = {};
    for (const row of rows) attempts[row.attempts] = (attempts[row.attempts] ?? 0) + 1;
    measured.attempts = JSON.stringify(attempts);

    // Each clip's jobs all carry that clip's text, and the two texts differ: no job got another's audio or result.
    const clipOf = new Map(submitted.map((s) => [s.jobId, s.clip]));
    const texts = [new Set<string>(), new Set<string>()];
    for (const row of rows) texts[clipOf.get(row.job_id)!].add(row.text ?? '');
    expect(texts[0].size).toBe(1);
    expect(texts[1].size).toBe(1);
    expect([...texts[0]][0]).toMatch(/\bgo\b/);
    expect([...texts[1]][0]).toMatch(/\btwo\b/);

    // Both workers took part, and every job was completed by exactly one worker run (their logs).
    const perWorker = workers.map((w) => rows.filter((r) => r.worker_id === w.workerId).length);
    measured.per_worker = JSON.stringify(perWorker);
    expect(perWorker.every((n) => n > 0)).toBe(true);
    expect(perWorker.reduce((a, b) => a + b, 0)).toBe(JOBS);
    const completions = new Map<string, number>();
    for (const w of workers) {
      for (const m of w.log().matchAll(/"msg":"job ([0-9a-f-]{36}) completed by/g)) completions.set(m[1], (completions.get(m[1]) ?? 0) + 1);
    }
    expect(ids.filter((id) => completions.get(id) !== 1)).toEqual([]);

    // BullMQ agrees: every job completed in Redis, none failed, none left waiting.
    const key = (name: string) => `${h.shared.QUEUE_PREFIX}:transcription:${name}`;
    expect(Number(await h.redis.command('ZCARD', key('completed')))).toBe(JOBS);
    expect(Number(await h.redis.command('ZCARD', key('failed')))).toBe(0);
    expect(Number(await h.redis.command('LLEN', key('wait')))).toBe(0);
    expect(Number(await h.redis.command('ZCARD', key('prioritized')))).toBe(0);
    expect(Number(await h.redis.command('LLEN', key('active')))).toBe(0);

    // And the API says so for every job.
    const states = await mapLimit(ids, IN_FLIGHT, async (id) => (await getJson<{ status: string }>(`${api.url}/api/transcribe/jobs/status/${id}`)).body.status);
    expect(states.filter((s) => s !== 'completed')).toEqual([]);
    expect(api.exit).toBeUndefined();
    expect(workers.map((w) => w.exit)).toEqual([undefined, undefined]);
  }, 55 * 60_000);
});
