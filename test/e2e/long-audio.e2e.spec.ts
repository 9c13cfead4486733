import { readdirSync } from 'node:fs';
import path from 'node:path';
import { AudioService } from '../../src/audio/audio.service.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { scratchDir, testConfig } from '../support/env.js';
import { FlakyEngine } from '../support/flaky-engine.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';
import { buildLongRecording } from '../support/recordings.js';
import { wordErrorRate } from '../support/wer.js';

interface StatusEvent { status: string; progress: number; stage: string; chunks_done?: number; chunks_total?: number }
interface ResultView { duration: number; text: string; segments: { start: number; end: number; words: { start: number; end: number }[] }[] }

const pocketsphinx = () => buildEngines({}).engines[0];

function expectOrderedTimes(result: ResultView) {
  const words = result.segments.flatMap((s) => s.words);
  expect(words.length).toBeGreaterThan(0);
  for (let i = 0; i < words.length; i++) {
    expect(words[i].end).toBeGreaterThanOrEqual(words[i].start);
    expect(words[i].end).toBeLessThanOrEqual(result.duration);
    if (i > 0) expect(words[i].start).toBeGreaterThanOrEqual(words[i - 1].start);
  }
}

describe('long audio: silence-aware chunks as BullMQ child jobs', () => {
  const gateways: TestGateway[] = [];
  const dir = scratchDir('long');
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.close()));
  });

  it('retries a failed chunk alone and completes the job (engine calls counted)', async () => {
    const flaky = new FlakyEngine(pocketsphinx(), 1, { code: 'ENGINE_UNAVAILABLE', retryable: true });
    const recording = buildLongRecording(dir, 45);
    const gw = await startGateway(testConfig({ CHUNKING_THRESHOLD: '20', CHUNK_DURATION: '12', JOB_BACKOFF_MS: '100' }), [flaky]);
    gateways.push(gw);
    const { body } = await submit(gw.url, recording.path);
    const events = await followStream<StatusEvent>(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`);
    const last = events[events.length - 1];
    expect(last.status).toBe('completed');
    const total = Math.max(...events.map((e) => e.chunks_total ?? 0));
    expect(total).toBeGreaterThanOrEqual(3);
    // One extra call: only the chunk that failed was transcribed again.
    expect(flaky.calls).toBe(total + 1);
    const [row] = await gw.db.query('SELECT attempts, error_details, t.metadata FROM transcript_jobs j JOIN transcripts t ON t.id = j.transcript_id WHERE job_id = $1', [body.job_id]);
    expect(row.attempts).toBe(1);
    expect(row.error_details).toBeNull();
    expect(row.metadata.chunks).toBe(total);
    const result = await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${body.job_id}`);
    expectOrderedTimes(result.body);
    expect(wordErrorRate([{ reference: recording.reference, hypothesis: result.body.text }])).toBeLessThan(0.6);
    // Chunk objects and every temp dir are gone.
    expect(readdirSync(gw.config.DATA_DIR, { recursive: true }).filter((f) => String(f).startsWith('chunks') && String(f).endsWith('.wav'))).toEqual([]);
    expect(readdirSync(path.join(gw.config.TEMP_DIR, 'jobs'))).toEqual([]);
  });

  it('fails the job with error_details when a chunk fails for good, and cleans up', async () => {
    const flaky = new FlakyEngine(pocketsphinx(), 99, { code: 'ENGINE_REJECTED', retryable: false });
    const recording = buildLongRecording(dir, 30);
    const gw = await startGateway(testConfig({ CHUNKING_THRESHOLD: '20', CHUNK_DURATION: '10' }), [flaky]);
    gateways.push(gw);
    const { body } = await submit(gw.url, recording.path);
    const events = await followStream<StatusEvent & { error?: Record<string, unknown> }>(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`);
    expect(events[events.length - 1].status).toBe('failed');
    const [row] = await gw.db.query('SELECT error_details, t.status FROM transcript_jobs j JOIN transcripts t ON t.id = j.transcript_id WHERE job_id = $1', [body.job_id]);
    expect(row.status).toBe('failed');
    expect(row.error_details).toMatchObject({ code: 'ENGINE_REJECTED', final: true });
    expect(typeof row.error_details.chunk).toBe('number');
    await new Promise((r) => setTimeout(r, 300));
    expect(readdirSync(gw.config.DATA_DIR, { recursive: true }).filter((f) => String(f).endsWith('.wav') && String(f).startsWith('chunks'))).toEqual([]);
  });

  it('transcribes a ≥ 10-minute recording with 2 workers, as accurately as unchunked, showing every chunk done', async () => {
    const recording = buildLongRecording(dir, 600);
    expect(recording.duration).toBeGreaterThanOrEqual(600);
    const shared = testConfig({ WORKER_CONCURRENCY: '1' });
    const api = await startGateway(Object.assign(testConfig(), shared, { APP_ROLE: 'api' }));
    const workers = [
      await startGateway(Object.assign(testConfig(), shared, { APP_ROLE: 'worker' })),
      await startGateway(Object.assign(testConfig(), shared, { APP_ROLE: 'worker' })),
    ];
    gateways.push(api, ...workers);

    // The same engine on the same decoded audio, in one piece (runs while the job runs).
    const audio = new AudioService(shared);
    const decoded = await audio.normalize(recording.path, path.join(dir, 'whole.wav'));
    const unchunked = pocketsphinx().transcribe(
      { path: decoded.path, duration_sec: decoded.duration_sec, max_volume_db: decoded.max_volume_db },
      {},
      { signal: new AbortController().signal },
    );

    const { body } = await submit(api.url, recording.path);
    const events = await followStream<StatusEvent>(`${api.url}/api/transcribe/jobs/stream/${body.job_id}`, 900_000);
    const result = await getJson<ResultView>(`${api.url}/api/transcribe/jobs/result/${body.job_id}`);
    const whole = await unchunked;

    expect(events[events.length - 1].status).toBe('completed');
    const total = Math.max(...events.map((e) => e.chunks_total ?? 0));
    expect(total).toBeGreaterThanOrEqual(4);
    const done = new Set(events.map((e) => e.chunks_done).filter((n): n is number => typeof n === 'number'));
    for (let k = 1; k <= total; k++) expect(done).toContain(k);
    const stages = events.map((e) => e.stage);
    expect(stages).toEqual(expect.arrayContaining(['transcribing', 'completed']));
    const progress = events.map((e) => e.progress);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);

    expect(result.status).toBe(200);
    expect(result.body.duration).toBeCloseTo(recording.duration, 1);
    expectOrderedTimes(result.body);
    const werChunked = wordErrorRate([{ reference: recording.reference, hypothesis: result.body.text }]);
    const werWhole = wordErrorRate([{ reference: recording.reference, hypothesis: whole.text }]);
    expect(werChunked).toBeLessThanOrEqual(werWhole + 0.01);
    const workersUsed = await api.db.query('SELECT worker_id FROM transcript_jobs WHERE job_id = $1', [body.job_id]);
    expect(workersUsed[0].worker_id).toMatch(/:\d+$/);
  }, 900_000);
});
