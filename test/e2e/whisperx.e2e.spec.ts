import { parseEnv } from '../../src/config/app-config.js';
import type { Segment } from '../../src/engines/engine.spec.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { WhisperxConfig } from '../../src/engines/whisperx/whisperx.config.js';
import { WhisperxEngine } from '../../src/engines/whisperx/whisperx.engine.js';
import { startAsrWebserviceServer, type AsrWebserviceServer } from '../support/asr-webservice-server.js';
import { fixture, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';

interface StatusEvent { status: string; progress: number; stage: string; message: string; error?: Record<string, unknown> }
interface ResultView { status: string; language: string | null; duration: number; text: string; segments: Segment[]; engine: string; model: string | null; warnings: string[] }
interface EnginesView { engines: Record<string, { available: boolean; diarization: boolean; word_boosting: boolean; language_detection: boolean; models: string[]; languages: string[]; details: Record<string, unknown> }> }

const ROUTE = '/api/transcribe/jobs/transcribe/whisperx';

describe('whisperx through HTTP (real Postgres, Redis, ffmpeg; whisper-asr-webservice test server)', () => {
  let server: AsrWebserviceServer;
  let gw: TestGateway;

  const jobRow = async (jobId: string) => (await gw.db.query('SELECT * FROM transcript_jobs WHERE job_id = $1', [jobId]))[0];
  const run = async (fields: Record<string, string> = {}) => {
    const submitted = await submit(gw.url, fixture('tts/dialogue_2spk.wav'), fields, { route: ROUTE });
    expect(submitted.status).toBe(202);
    expect(submitted.body).toMatchObject({ engine: 'whisperx', status: 'queued' });
    const jobId = submitted.body.job_id as string;
    const events = await followStream<StatusEvent>(`${gw.url}/api/transcribe/jobs/stream/${jobId}`);
    return { jobId, events, last: events[events.length - 1] };
  };

  beforeAll(async () => {
    // Speakers even without diarize=true: submissions cannot ask for diarization through this route yet.
    server = await startAsrWebserviceServer({ alwaysDiarize: true });
    const { value, problems } = parseEnv(WhisperxConfig, { WHISPERX_SERVICE_URL: server.url, WHISPERX_TIMEOUT: '60' });
    expect(problems).toEqual([]);
    gw = await startGateway(testConfig({ JOB_MAX_RETRIES: '2', JOB_BACKOFF_MS: '100' }), [buildEngines({}).engines[0], new WhisperxEngine(value)]);
  });
  afterAll(async () => {
    await gw?.close();
    await server?.close();
  });

  it('lists whisperx on /engines from its cached health probe, with models and capabilities', async () => {
    let view: EnginesView['engines'][string] | undefined;
    for (let i = 0; i < 50 && !view?.available; i++) {
      view = (await getJson<EnginesView>(`${gw.url}/api/transcribe/jobs/engines`)).body.engines.whisperx;
      if (!view?.available) await new Promise((r) => setTimeout(r, 100));
    }
    expect(view).toMatchObject({ available: true, diarization: true, word_boosting: false, language_detection: true, details: { device: 'cuda' } });
    expect(view!.models[0]).toBe('base');
    expect(view!.languages).toContain('en');
    expect(server.gets).toContain('/health');
  });

  it('transcribes the dialogue: speakers 0/1, interpolated words, detected language, streamed to completion', async () => {
    const before = server.requests.length;
    const { jobId, events, last } = await run();
    expect(last).toMatchObject({ status: 'completed', progress: 100 });
    const progress = events.map((e) => e.progress);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);

    expect(server.requests.length).toBe(before + 1);
    const request = server.requests[before];
    // What the adapter sends follows the options the job carried.
    const options = (await jobRow(jobId)).engine_params as { diarization?: { enabled: boolean }; language?: string };
    expect(request.query).toMatchObject({ task: 'transcribe', output: 'json', word_timestamps: 'true', model: 'base', diarize: options.diarization?.enabled ? 'true' : 'false' });
    expect(request.query.language).toBeUndefined();
    expect(request.file).toMatchObject({ field: 'audio_file', wav: { sampleRate: 16000, channels: 1, bitsPerSample: 16 } });
    expect(request.file!.wav!.durationSec).toBeCloseTo(32, 0);

    const result = await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${jobId}`);
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ status: 'completed', engine: 'whisperx', model: 'base', language: 'en' });
    expect(result.body.text).toMatch(/^The birch canoe slid on the smooth planks\./);
    expect(result.body.segments.map((s) => s.speaker_tag)).toEqual([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    for (const s of result.body.segments) for (const w of s.words) expect(w.speaker_tag).toBe(s.speaker_tag);
    const interpolated = result.body.segments.flatMap((s) => s.words).filter((w) => w.interpolated);
    expect(interpolated.map((w) => w.word)).toEqual(['1984.', '100%']);
    expect(interpolated.every((w) => w.confidence === null)).toBe(true);
    expect(result.body.warnings.join(' ')).toMatch(/interpolated/);
  });

  it('passes the submission options (model, language, diarization, speakers, prompt) to the server', async () => {
    const before = server.requests.length;
    const { jobId, last } = await run({ model: 'large-v3', language: 'en-US', enable_diarization: 'true', min_speakers: '2', max_speakers: '3', prompt: 'Harvard sentences' });
    expect(last).toMatchObject({ status: 'completed' });
    expect((await jobRow(jobId)).engine_params).toMatchObject({ model: 'large-v3', language: 'en-US', diarization: { enabled: true, min_speakers: 2, max_speakers: 3 } });
    expect(server.requests[before].query).toMatchObject({
      model: 'large-v3', language: 'en', diarize: 'true', min_speakers: '2', max_speakers: '3', initial_prompt: 'Harvard sentences',
    });
    const result = await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${jobId}`);
    expect(result.body).toMatchObject({ model: 'large-v3', language: 'en' });
    expect(new Set(result.body.segments.map((s) => s.speaker_tag))).toEqual(new Set([0, 1]));
  });

  it('retries a 503 and completes on the second attempt', async () => {
    server.enqueue('unavailable');
    const before = server.requests.length;
    const { jobId, last } = await run();
    expect(last).toMatchObject({ status: 'completed' });
    expect(server.requests.slice(before).map((r) => r.answered)).toEqual(['unavailable', 'ok']);
    expect(await jobRow(jobId)).toMatchObject({ attempts: 2, error_details: null });
  });

  it('fails a 400 after one attempt with error_details from the server', async () => {
    server.enqueue('bad_request');
    const before = server.requests.length;
    const { jobId, last } = await run();
    expect(last.status).toBe('failed');
    expect(last.error).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false });
    expect(server.requests.length).toBe(before + 1);
    const row = await jobRow(jobId);
    expect(row.attempts).toBe(1);
    expect(row.error_details).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false, engine: 'whisperx', upstream_status: 400, internal: { http_status: 400, detail: expect.stringMatching(/could not be decoded/) } });
    expect(last.error).not.toHaveProperty('internal');
  });
});
