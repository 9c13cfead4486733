import { readdirSync } from 'node:fs';
import { EngineError } from '../../src/engines/engine.error.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import type { EngineAudio, TranscribeContext, TranscribeOptions, TranscriptionEngine, TranscriptionResult } from '../../src/engines/engine.spec.js';
import { RetentionSweeper } from '../../src/retention/retention.processor.js';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';
import { buildLongRecording } from '../support/recordings.js';

interface StatusView { status: string; progress: number; stage: string; error?: Record<string, unknown> }

const pocketsphinx = () => buildEngines({}).engines[0];

/** A whisperx-shaped engine whose service is down: every call fails with a retryable error. */
class DownEngine implements TranscriptionEngine {
  readonly id = 'whisperx';
  readonly displayName = 'whisperx (down, tests)';
  calls = 0;
  readonly capabilities = { ...pocketsphinx().capabilities, diarization: true, models: [] };
  async health() {
    return { available: false, message: 'connection refused' };
  }
  async transcribe(_a: EngineAudio, _o: TranscribeOptions, _c: TranscribeContext): Promise<TranscriptionResult> {
    this.calls++;
    throw new EngineError('ENGINE_UNAVAILABLE', 'whisperx cannot be reached (ECONNREFUSED)', this.id, { details: { url: 'http://10.0.0.9:9000' } });
  }
}

const storedFiles = (gw: TestGateway) => readdirSync(gw.config.DATA_DIR, { recursive: true }).map(String).filter((f) => f.endsWith('.wav') || f.endsWith('.mp3'));

describe('job control: DELETE, fallbacks, retention, health', () => {
  const gateways: TestGateway[] = [];
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.close()));
  });

  it('cancels a queued job, and deletes a finished one with its transcript, row and audio', async () => {
    const api = await startGateway(testConfig({ APP_ROLE: 'api' }));
    gateways.push(api);
    const queued = await submit(api.url, fixture('goforward.wav'));
    const cancel = await fetch(`${api.url}/api/transcribe/jobs/${queued.body.job_id}`, { method: 'DELETE' });
    expect(cancel.status).toBe(202);
    expect(await cancel.json()).toEqual({ job_id: queued.body.job_id, status: 'cancelled' });
    const status = await getJson<StatusView>(`${api.url}/api/transcribe/jobs/status/${queued.body.job_id}`);
    // Cancelled, not failed (the transcript row keeps `failed`: the Postgres enum has no `cancelled`).
    expect(status.body).toMatchObject({ status: 'cancelled', stage: 'cancelled', error: { code: 'JOB_CANCELLED' } });
    const sse = await followStream<StatusView>(`${api.url}/api/transcribe/jobs/stream/${queued.body.job_id}`, 10_000);
    expect(sse).toHaveLength(1);
    expect(sse[0]).toMatchObject({ status: 'cancelled', error: { code: 'JOB_CANCELLED' } });
    expect((await api.db.query('SELECT status FROM transcripts WHERE id = $1', [queued.body.transcript_id]))[0]).toEqual({ status: 'failed' });

    // Deleting the now-finished job removes everything.
    const del = await fetch(`${api.url}/api/transcribe/jobs/${queued.body.job_id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await api.db.query('SELECT 1 FROM transcripts WHERE id = $1', [queued.body.transcript_id])).toEqual([]);
    expect(await api.db.query('SELECT 1 FROM transcript_jobs WHERE job_id = $1', [queued.body.job_id])).toEqual([]);
    expect(storedFiles(api)).toEqual([]);
    // A deleted job is gone (410 JOB_DELETED), not unknown, wherever it is asked for; DELETE again finds nothing.
    for (const route of ['status', 'result', 'stream', 'audio']) {
      const gone = await getJson(`${api.url}/api/transcribe/jobs/${route}/${queued.body.job_id}`);
      expect([route, gone.status, gone.body.code]).toEqual([route, 410, 'JOB_DELETED']);
      expect(gone.body.message).toMatch(/was deleted \(DELETE at .+\); its transcript and audio are gone/);
    }
    expect((await fetch(`${api.url}/api/transcribe/jobs/${queued.body.job_id}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('cancels a running chunked job: its chunks stop, it ends failed JOB_CANCELLED, no chunk objects remain', async () => {
    const recording = buildLongRecording(scratchDir('cancel'), 90);
    const gw = await startGateway(testConfig({ CHUNKING_THRESHOLD: '20', CHUNK_DURATION: '15', WORKER_CONCURRENCY: '1' }));
    gateways.push(gw);
    const { body } = await submit(gw.url, recording.path);
    // Wait until chunks are being transcribed.
    for (let i = 0; i < 100; i++) {
      const s = (await getJson<StatusView>(`${gw.url}/api/transcribe/jobs/status/${body.job_id}`)).body;
      if (s.stage === 'transcribing') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const res = await fetch(`${gw.url}/api/transcribe/jobs/${body.job_id}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`, 30_000);
    expect(events[events.length - 1]).toMatchObject({ status: 'cancelled', error: { code: 'JOB_CANCELLED' } });
    await new Promise((r) => setTimeout(r, 1500));
    const [row] = await gw.db.query('SELECT t.status, j.error_details FROM transcript_jobs j JOIN transcripts t ON t.id = j.transcript_id WHERE job_id = $1', [body.job_id]);
    expect(row).toMatchObject({ status: 'failed', error_details: { code: 'JOB_CANCELLED' } });
    expect(storedFiles(gw).filter((f) => f.startsWith('chunks'))).toEqual([]);
    expect(readdirSync(`${gw.config.TEMP_DIR}/jobs`)).toEqual([]);
  });

  it('falls back to the next engine when one keeps failing with retryable errors, and records which engine did the work', async () => {
    const down = new DownEngine();
    const gw = await startGateway(testConfig({ ENGINE_FALLBACKS: 'whisperx:whisper-rocm,pocketsphinx', JOB_MAX_RETRIES: '1', JOB_BACKOFF_MS: '50' }), [pocketsphinx(), down]);
    gateways.push(gw);
    const { body } = await submit(gw.url, fixture('goforward.wav'), { engine: 'whisperx' });
    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`);
    expect(events[events.length - 1].status).toBe('completed');
    expect(down.calls).toBe(2);
    const result = await getJson<{ engine: string }>(`${gw.url}/api/transcribe/jobs/result/${body.job_id}`);
    expect(result.body.engine).toBe('pocketsphinx');
    const [row] = await gw.db.query('SELECT j.engine, j.attempts, t.metadata FROM transcript_jobs j JOIN transcripts t ON t.id = j.transcript_id WHERE job_id = $1', [body.job_id]);
    expect(row).toMatchObject({ engine: 'whisperx', attempts: 3, metadata: { engine: 'pocketsphinx', fallback_from: 'whisperx' } });
  });

  it('without a fallback, an engine outage is retried with backoff and then fails with error_details', async () => {
    const down = new DownEngine();
    const gw = await startGateway(testConfig({ JOB_MAX_RETRIES: '2', JOB_BACKOFF_MS: '50' }), [pocketsphinx(), down]);
    gateways.push(gw);
    const { body } = await submit(gw.url, fixture('goforward.wav'), { engine: 'whisperx' });
    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`);
    expect(events[events.length - 1]).toMatchObject({ status: 'failed', error: { code: 'ENGINE_UNAVAILABLE', retryable: true, attempt: 3, final: true } });
    expect(down.calls).toBe(3);
  });

  it('deletes audio past AUDIO_RETENTION_HOURS with the retention sweep and keeps the transcript', async () => {
    const gw = await startGateway(testConfig({ AUDIO_RETENTION_HOURS: '24' }));
    gateways.push(gw);
    const old = await submit(gw.url, fixture('goforward.wav'));
    const recent = await submit(gw.url, fixture('libri_0880.wav'));
    await followStream(`${gw.url}/api/transcribe/jobs/stream/${old.body.job_id}`);
    await followStream(`${gw.url}/api/transcribe/jobs/stream/${recent.body.job_id}`);
    await gw.db.query(`UPDATE transcripts SET created_at = now() - interval '25 hours' WHERE id = $1`, [old.body.transcript_id]);
    const deleted = await gw.app.get(RetentionSweeper).sweep();
    expect(deleted).toBe(1);
    expect(storedFiles(gw)).toEqual([expect.stringContaining(String(recent.body.transcript_id))]);
    const result = await getJson<{ audio_url: string | null; text: string }>(`${gw.url}/api/transcribe/jobs/result/${old.body.job_id}`);
    expect(result.status).toBe(200);
    expect(result.body.audio_url).toBeNull();
    expect(result.body.text.length).toBeGreaterThan(0);
    expect((await fetch(`${gw.url}/api/transcribe/jobs/audio/${old.body.job_id}`)).status).toBe(410);
  });

  it('serves /health/live and /health/ready (Postgres, Redis, storage)', async () => {
    const gw = await startGateway(testConfig());
    gateways.push(gw);
    expect((await getJson(`${gw.url}/health/live`)).body).toMatchObject({ status: 'ok' });
    const ready = await getJson<{ status: string; details: Record<string, { status: string }> }>(`${gw.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(Object.keys(ready.body.details).sort()).toEqual(['postgres', 'redis', 'storage']);
    expect((await getJson(`${gw.url}/health`)).status).toBe(200);
  });

  it('exports Prometheus metrics for jobs, audio seconds, RTF, queue depth and engine health', async () => {
    const gw = await startGateway(testConfig());
    gateways.push(gw);
    const { body } = await submit(gw.url, fixture('goforward.wav'));
    await followStream(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`);
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
    expect(value(/^gateway_jobs_total\{engine="pocketsphinx",status="submitted"\} (\d+)/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^gateway_jobs_total\{engine="pocketsphinx",status="completed"\} (\d+)/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^gateway_audio_seconds_total\{engine="pocketsphinx",api_key="anonymous"\} ([\d.]+)/m)).toBeCloseTo(2.79, 1);
    expect(value(/^gateway_rtf_count\{engine="pocketsphinx"\} (\d+)/m)).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^gateway_queue_depth\{queue="transcription",state="completed"\} \d+/m);
    expect(value(/^gateway_engine_up\{engine="pocketsphinx"\} (\d)/m)).toBe(1);
  });
});

