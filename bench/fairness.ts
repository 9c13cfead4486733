/**
 * Fairness: finish times of two API keys' jobs with fair scheduling on and off (FAIR_SCHEDULING),
 * measured side by side in one run.
 *
 * Per mode: a fresh API process and one worker process (WORKER_CONCURRENCY=2) with whisper-rocm
 * pointed at a simulated engine (bench/lib/simulated-engine.ts: BENCH_FAIR_MS_PER_SEC ms of
 * inference per second of audio, one request at a time, like one GPU replica;
 * WHISPER_ROCM_CONCURRENCY=1), chunks of ~10 s above 15 s. The engine is held while key A queues
 * two long recordings (BENCH_FAIR_SECONDS, default 60 s each) and key B one, until all three are
 * split and queued — so the order of the chunks is the scheduler's, not the machine's speed at
 * splitting. Then the engine runs and B queues a short clip (jfk.wav, 11 s). Times are seconds
 * from the release; the clip's is from its submission. The modes alternate BENCH_FAIR_REPEAT
 * times (default 1); medians.
 */
import path from 'node:path';
import { envNumber, fixture, runBench, scratchDir } from './lib/env.js';
import { benchSpace, GatewayProcess, removeQueues } from './lib/gateway.js';
import { settleAndDescribe, waitForQuiet } from './lib/machine.js';
import { buildRecording } from './lib/recording.js';
import { median, round, writeResult, type HeadlineRow } from './lib/results.js';
import { startSimulatedEngine, type SimulatedCall } from './lib/simulated-engine.js';
import { readFile } from 'node:fs/promises';

const KEY_A = 'bench-fair-key-a-0123456789';
const KEY_B = 'bench-fair-key-b-9876543210';
const ROUTE = '/api/transcribe/jobs/transcribe/whisper-rocm';
const CHUNK_SEC = 10;
type Mode = 'fifo' | 'fair';
type JobName = 'A1' | 'A2' | 'B1' | 'B2';

interface ScenarioResult {
  mode: Mode;
  /** Seconds from the engine's release to the API reporting each job completed (B2: from its submission). */
  finished_s: Record<JobName, number>;
  clip_engine_wait_s: number;
  load_average_at_start: number[];
  /** Engine calls: [arrived, started, ended] seconds from the release, audio seconds, language. */
  calls: [number, number, number, number, string | null][];
}

async function post(baseUrl: string, key: string, file: string, fields: Record<string, string> = {}): Promise<string> {
  const form = new FormData();
  form.append('vad_filter', 'false');
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append('file', new Blob([new Uint8Array(await readFile(file))], { type: 'audio/wav' }), path.basename(file));
  const res = await fetch(`${baseUrl}${ROUTE}`, { method: 'POST', body: form, headers: { Authorization: `Bearer ${key}` } });
  const body = (await res.json()) as { job_id?: string };
  if (res.status !== 202 || !body.job_id) throw new Error(`submission answered ${res.status}: ${JSON.stringify(body)}`);
  return body.job_id;
}

async function status(baseUrl: string, key: string, jobId: string): Promise<{ status: string; stage: string }> {
  const res = await fetch(`${baseUrl}/api/transcribe/jobs/status/${jobId}`, { headers: { Authorization: `Bearer ${key}` } });
  return (await res.json()) as { status: string; stage: string };
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function scenario(mode: Mode, scratch: string, recording: string, msPerSec: number): Promise<ScenarioResult> {
  const engine = await startSimulatedEngine(msPerSec);
  const space = benchSpace(path.join(scratch, mode), mode);
  const env = {
    API_KEYS: `${KEY_A},${KEY_B}`,
    WHISPER_ROCM_URL: engine.url,
    WHISPER_ROCM_CONCURRENCY: '1',
    WHISPER_ROCM_CHUNKING_THRESHOLD: '15',
    WHISPER_ROCM_CHUNK_DURATION: String(CHUNK_SEC),
    WHISPER_ROCM_TIMEOUT: '600',
    FAIR_SCHEDULING: String(mode === 'fair'),
    MAX_QUEUED_AUDIO_SECONDS_PER_KEY: '0',
  };
  const api = await GatewayProcess.start(`api-${mode}`, 'api', space, env);
  const worker = await GatewayProcess.start(`worker-${mode}`, 'worker', space, { ...env, WORKER_CONCURRENCY: '2' });
  const base = api.baseUrl!;
  try {
    const load = await waitForQuiet();
    engine.hold();
    const queued = (key: string, id: string) => until(`job ${id} to queue its chunks`, async () => (await status(base, key, id)).stage === 'transcribing', 180_000);
    const a1 = await post(base, KEY_A, recording);
    const a2 = await post(base, KEY_A, recording);
    await queued(KEY_A, a1);
    await queued(KEY_A, a2);
    const b1 = await post(base, KEY_B, recording);
    await queued(KEY_B, b1);
    engine.release();
    const released = Date.now();
    const b2 = await post(base, KEY_B, fixture('jfk.wav'), { language: 'en' });
    const jobs: Record<JobName, [string, string]> = { A1: [KEY_A, a1], A2: [KEY_A, a2], B1: [KEY_B, b1], B2: [KEY_B, b2] };
    const doneAt: Partial<Record<JobName, number>> = {};
    await until('every job to complete', async () => {
      for (const [name, [key, id]] of Object.entries(jobs) as [JobName, [string, string]][]) {
        if (doneAt[name]) continue;
        const s = await status(base, key, id);
        if (s.status === 'failed') throw new Error(`${mode}: ${name} failed`);
        if (s.status === 'completed') doneAt[name] = Date.now();
      }
      return Object.keys(doneAt).length === 4;
    }, 900_000);
    const s = (t: number) => round((t - released) / 1000, 1);
    const clip = engine.calls.find((c) => c.language === 'en')!;
    return {
      mode,
      finished_s: { A1: s(doneAt.A1!), A2: s(doneAt.A2!), B1: s(doneAt.B1!), B2: s(doneAt.B2!) },
      clip_engine_wait_s: round((clip.startedAt - clip.arrivedAt) / 1000, 2),
      load_average_at_start: load.load_average,
      calls: engine.calls.map((c: SimulatedCall) => [s(c.arrivedAt), s(c.startedAt), s(c.endedAt), round(c.audioSec, 2), c.language]),
    };
  } finally {
    await worker.stop();
    await api.stop();
    await removeQueues(space.queuePrefix);
    await engine.close();
  }
}

async function main(): Promise<void> {
  const started = new Date();
  const msPerSec = envNumber('BENCH_FAIR_MS_PER_SEC', 300);
  const seconds = envNumber('BENCH_FAIR_SECONDS', 60);
  const repeat = Math.max(1, envNumber('BENCH_FAIR_REPEAT', 1));
  const scratch = scratchDir('fairness');
  const recording = buildRecording(scratch, seconds);
  const machine = await settleAndDescribe();

  const runs: ScenarioResult[] = [];
  for (let i = 0; i < repeat; i++) {
    for (const mode of (i % 2 === 0 ? ['fifo', 'fair'] : ['fair', 'fifo']) as Mode[]) {
      console.log(`  ${mode} run ${i + 1}/${repeat}`);
      runs.push(await scenario(mode, scratch, recording.path, msPerSec));
    }
  }
  const med = (mode: Mode, job: JobName) => round(median(runs.filter((r) => r.mode === mode).map((r) => r.finished_s[job])), 1);
  const clipWait = (mode: Mode) => round(median(runs.filter((r) => r.mode === mode).map((r) => r.clip_engine_wait_s)), 2);
  const chunkS = round((CHUNK_SEC * msPerSec) / 1000, 1);
  const headline: HeadlineRow[] = [];
  for (const mode of ['fifo', 'fair'] as Mode[]) {
    const label = mode === 'fair' ? 'fair' : 'first in, first out';
    headline.push(
      { metric: `A's 1st / 2nd long recording finished, ${label}`, value: `${med(mode, 'A1')} / ${med(mode, 'A2')}`, unit: 's', note: 'from the engine starting on the backlog' },
      { metric: `B's long recording finished, ${label}`, value: med(mode, 'B1'), unit: 's', note: med(mode, 'B1') < med(mode, 'A2') ? "before A's 2nd" : "after A's 2nd" },
      { metric: `B's 11 s clip finished, ${label}`, value: med(mode, 'B2'), unit: 's', note: `after its submission; waited ${clipWait(mode)} s at the engine (one chunk: ${chunkS} s)` },
    );
  }
  writeResult({
    benchmark: 'fairness',
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    machine,
    method: 'Per mode (FAIR_SCHEDULING false, then true; alternating when repeated): a fresh API and worker process (WORKER_CONCURRENCY=2), whisper-rocm on a simulated engine (ms per audio second, one request at a time, WHISPER_ROCM_CONCURRENCY=1), chunks of ~10 s. The engine is held while key A queues two long recordings and key B one, until all three are split and queued; then released, and B queues an 11 s clip. Finish times are when the API first reports each job completed, seconds from the release (the clip: from its submission).',
    config: { ms_per_audio_sec: msPerSec, recording_sec: round(recording.duration, 1), chunk_sec: CHUNK_SEC, repeat },
    measurements: { runs },
    headline,
  });
}

runBench(main);
