/**
 * Fault: a worker process is killed (SIGKILL) in the middle of a job. BullMQ's stalled-job check
 * in another worker process finds the job's lock lapsed and puts it back in the queue; that worker
 * runs it again. The job must complete exactly once: one transcript row, one transcript_jobs row,
 * the same segments as a clean run (nothing duplicated), and the surviving worker's id.
 *
 * Two shapes: one engine call for the whole recording (killed inside pocketsphinx), and the
 * long-audio pipeline (killed while chunk jobs run: the chunks in flight are recovered alone).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { getJson, submit } from '../support/http.js';
import { FaultHarness, GiveUp, waitFor, type GatewayProcess } from '../support/processes.js';
import { buildLongRecording } from '../support/recordings.js';
import { wordErrorRate } from '../support/wer.js';

interface StatusView { status: string; progress: number; stage: string; worker_id: string | null; chunks_done?: number; chunks_total?: number }
interface Word { word: string; start: number; end: number }
interface ResultView { text: string; duration: number; segments: { start: number; end: number; text: string; words: Word[] }[] }

/** Short lock and stalled-check periods so that recovery takes seconds (the defaults are 30 s each). */
const FAST_STALL = { WORKER_LOCK_DURATION_MS: '6000', WORKER_STALLED_INTERVAL_MS: '3000' };

/** Words in recording order, never going back in time: a duplicated segment would. */
function expectWordsOrdered(result: ResultView): void {
  const words = result.segments.flatMap((s) => s.words);
  expect(words.length).toBeGreaterThan(20);
  for (let i = 1; i < words.length; i++) {
    expect(words[i].start).toBeGreaterThanOrEqual(words[i - 1].end - 0.011);
  }
  for (let i = 1; i < result.segments.length; i++) {
    expect(result.segments[i].start).toBeGreaterThanOrEqual(result.segments[i - 1].end - 0.011);
  }
}

describe('faults: worker killed mid-job (real processes)', () => {
  let h: FaultHarness;
  let api: GatewayProcess;
  let recording: { path: string; reference: string; duration: number };
  const measured: Record<string, number | string> = {};
  /** Submissions so far in this suite's private database (one transcript and one job row each). */
  let submissions = 0;

  const status = async (jobId: string) => (await getJson<StatusView>(`${api.url}/api/transcribe/jobs/status/${jobId}`)).body;
  const result = async (jobId: string) => (await getJson<ResultView>(`${api.url}/api/transcribe/jobs/result/${jobId}`)).body;
  const completed = (jobId: string, timeoutMs: number) =>
    waitFor(`job ${jobId} to complete`, async () => {
      const s = await status(jobId);
      if (s.status === 'failed') throw new GiveUp(`job failed: ${JSON.stringify(s)}`);
      return s.status === 'completed' ? s : null;
    }, timeoutMs, 250);
  const jobHash = (jobId: string, queue = 'transcription') => h.redis.command('HGETALL', `${h.shared.QUEUE_PREFIX}:${queue}:${jobId}`) as Promise<string[]>;
  /** A field of a job hash as HGETALL returns it (name, value, name, value…); undefined when absent. */
  const field = (hash: string[], name: string): string | undefined => {
    for (let i = 0; i < hash.length; i += 2) if (hash[i] === name) return hash[i + 1];
    return undefined;
  };
  /** Engine/ffmpeg processes still working in this suite's job scratch dirs (a killed worker's children live on). */
  const scratchProcesses = () => {
    try {
      return execFileSync('pgrep', ['-f', path.join(h.shared.TEMP_DIR, 'jobs')], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  const scratchDirs = () => readdirSync(path.join(h.shared.TEMP_DIR, 'jobs')).length;

  beforeAll(async () => {
    h = await FaultHarness.create('crash');
    api = await h.startGateway({ role: 'api', name: 'api' });
    recording = buildLongRecording(h.root, 75);
  }, 240_000);

  afterAll(async () => {
    console.log(`worker-crash measured (times in ms): ${JSON.stringify(measured)}`);
    await h?.cleanup();
  });

  /** Submits the recording to a worker and returns the finished result (the reference run). */
  async function cleanRun(): Promise<{ jobId: string; result: ResultView }> {
    const { status: code, body } = await submit(api.url, recording.path);
    expect(code).toBe(202);
    submissions++;
    await completed(body.job_id as string, 180_000);
    // The short lock never lapsed while the worker was alive: no false stall.
    expect(field(await jobHash(body.job_id as string), 'stc') ?? '0').toBe('0');
    return { jobId: body.job_id as string, result: await result(body.job_id as string) };
  }

  /** Row counts and the job's row: exactly one transcript and one job row per submission. */
  async function rowsFor(jobId: string) {
    const [counts] = await h.postgres.query<{ transcripts: string; jobs: string }>(
      'SELECT (SELECT count(*) FROM transcripts) AS transcripts, (SELECT count(*) FROM transcript_jobs) AS jobs');
    expect(Number(counts.transcripts)).toBe(submissions);
    expect(Number(counts.jobs)).toBe(submissions);
    const rows = await h.postgres.query<{ worker_id: string; attempts: number; completed_at: Date | null; error_details: unknown; status: string; metadata: Record<string, unknown> }>(
      'SELECT j.worker_id, j.attempts, j.completed_at, j.error_details, t.status, t.metadata FROM transcript_jobs j JOIN transcripts t ON t.id = j.transcript_id WHERE j.job_id = $1', [jobId]);
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  it('one engine call: a job whose worker is killed inside pocketsphinx completes once on the other worker', async () => {
    const env = { ...FAST_STALL, CHUNKING_THRESHOLD: '600', WORKER_CONCURRENCY: '1' };
    const workerA = await h.startGateway({ role: 'worker', name: 'single-A', env });
    let t = Date.now();
    const clean = await cleanRun();
    measured.single_clean_run = Date.now() - t;

    const { body } = await submit(api.url, recording.path);
    submissions++;
    const jobId = body.job_id as string;
    // Inside the engine call: past intake, and pocketsphinx has reported some progress.
    const running = await waitFor('the job to be transcribing on worker A', async () => {
      const s = await status(jobId);
      return s.status === 'processing' && s.stage === 'transcribing' && s.progress > 12 ? s : null;
    }, 120_000, 100);
    expect(running.worker_id).toBe(workerA.workerId);
    t = Date.now();
    await workerA.kill('SIGKILL');
    measured.single_engine_processes_left_running = scratchProcesses();
    const workerB = await h.startGateway({ role: 'worker', name: 'single-B', env });
    await waitFor('worker B to take the job over', async () => (await status(jobId)).worker_id === workerB.workerId, 150_000, 100);
    measured.single_kill_to_takeover = Date.now() - t;
    const done = await completed(jobId, 180_000);
    measured.single_kill_to_completed = Date.now() - t;

    expect(done.worker_id).toBe(workerB.workerId);
    const row = await rowsFor(jobId);
    expect(row.status).toBe('completed');
    expect(row.worker_id).toBe(workerB.workerId);
    expect(row.completed_at).not.toBeNull();
    expect(row.error_details).toBeNull();
    measured.single_row_attempts = row.attempts;
    // Only the killed worker's scratch dir is left (B removed its own).
    measured.single_scratch_dirs_left = scratchDirs();
    expect(scratchDirs()).toBeLessThanOrEqual(1);
    // Recovered by the stalled-job check (not by a failed attempt's retry).
    const hash = await jobHash(jobId);
    expect(field(hash, 'stc')).toBe('1');

    const recovered = await result(jobId);
    expectWordsOrdered(recovered);
    expect(recovered.segments.length).toBe(clean.result.segments.length);
    expect(recovered.text).toBe(clean.result.text);
    expect(wordErrorRate([{ reference: recording.reference, hypothesis: recovered.text }])).toBeLessThan(0.5);
    expect(workerA.exit?.signal).toBe('SIGKILL');
    await workerB.kill('SIGTERM');
  }, 600_000);

  it('chunked: a worker killed while chunk jobs run; the chunks in flight are recovered and the job completes once', async () => {
    const env = { ...FAST_STALL, CHUNKING_THRESHOLD: '20', CHUNK_DURATION: '10', WORKER_CONCURRENCY: '2' };
    const workerA = await h.startGateway({ role: 'worker', name: 'chunked-A', env });
    let t = Date.now();
    const clean = await cleanRun();
    measured.chunked_clean_run = Date.now() - t;

    const { body } = await submit(api.url, recording.path);
    submissions++;
    const jobId = body.job_id as string;
    const running = await waitFor('some but not all chunks to be done on worker A', async () => {
      const s = await status(jobId);
      return s.status === 'processing' && (s.chunks_done ?? 0) >= 1 && (s.chunks_done ?? 0) <= (s.chunks_total ?? 0) - 3 ? s : null;
    }, 120_000, 100);
    const total = running.chunks_total!;
    const activeChunks = (await h.redis.command('LRANGE', `${h.shared.QUEUE_PREFIX}:chunks-pocketsphinx:active`, 0, -1)) as string[];
    t = Date.now();
    await workerA.kill('SIGKILL');
    measured.chunked_engine_processes_left_running = scratchProcesses();
    const inFlight = activeChunks.filter((id) => id.startsWith(jobId));
    expect(inFlight.length).toBeGreaterThanOrEqual(1);

    const workerB = await h.startGateway({ role: 'worker', name: 'chunked-B', env });
    const done = await completed(jobId, 180_000);
    measured.chunked_kill_to_completed = Date.now() - t;
    expect(done.worker_id).toBe(workerB.workerId);

    const row = await rowsFor(jobId);
    expect(row.status).toBe('completed');
    expect(row.completed_at).not.toBeNull();
    expect(row.error_details).toBeNull();
    expect(row.metadata.chunks).toBe(total);
    measured.chunked_row_attempts = row.attempts;
    // B finished the job (its chunks and the merge): the row names it, as the status endpoint does.
    expect(row.worker_id).toBe(workerB.workerId);
    measured.chunks = total;
    measured.chunks_in_flight_at_kill = inFlight.length;
    // Each chunk in flight when A died was recovered once by the stalled check and then completed.
    for (const id of inFlight) {
      const hash = await jobHash(id, 'chunks-pocketsphinx');
      expect(field(hash, 'stc')).toBe('1');
      expect(field(hash, 'finishedOn')).toBeDefined();
    }

    const recovered = await result(jobId);
    expectWordsOrdered(recovered);
    expect(recovered.segments.length).toBe(clean.result.segments.length);
    expect(recovered.text).toBe(clean.result.text);
    expect(wordErrorRate([{ reference: recording.reference, hypothesis: recovered.text }])).toBeLessThan(0.6);
    await workerB.kill('SIGTERM');
  }, 600_000);
});
