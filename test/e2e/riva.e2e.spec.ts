import { status } from '@grpc/grpc-js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { parseRivaEnv } from '../../src/engines/riva/riva.config.js';
import { RivaEngine } from '../../src/engines/riva/riva.engine.js';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { buildLongRecording } from '../support/recordings.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';
import { RivaTestServer } from '../support/riva-server.js';

interface StatusEvent { status: string; progress: number; error?: Record<string, unknown> }
interface ResultView {
  engine: string; model: string | null; language: string; duration: number; text: string; warnings: string[];
  segments: { start: number; end: number; text: string; speaker_tag: number | null; words: { word: string; start: number; end: number; speaker_tag: number | null }[] }[];
}
interface EnginesView { engines: Record<string, { available: boolean; message: string | null; details: Record<string, unknown>; word_boosting: boolean; diarization: boolean; models: string[] }> }

const MODEL = 'parakeet-1.1b-en-US-asr-offline-asr-bls-ensemble';

/** The riva adapter inside the real gateway (HTTP, BullMQ, Postgres, ffmpeg), against the Riva-protocol test server. */
describe('riva through the gateway (seed alias asr)', () => {
  let server: RivaTestServer;
  let riva: RivaEngine;
  let gw: TestGateway;

  beforeAll(async () => {
    server = await RivaTestServer.start();
    const { value, problems } = parseRivaEnv({ RIVA_URI: server.uri, RIVA_MODEL: MODEL, RIVA_METADATA: 'authorization=Bearer e2e' });
    expect(problems).toEqual([]);
    riva = new RivaEngine(value);
    const pocketsphinx = buildEngines({}).engines.find((e) => e.id === 'pocketsphinx')!;
    gw = await startGateway(testConfig({ JOB_MAX_RETRIES: '2', JOB_BACKOFF_MS: '100' }), [pocketsphinx, riva]);
  });
  afterAll(async () => {
    await gw?.close();
    riva?.close();
    await server?.stop();
  });
  beforeEach(() => {
    server.received.length = 0;
    server.script.length = 0;
    server.healthStatus = 'SERVING';
  });

  async function run(file: string, fields: Record<string, string> = {}) {
    const submitted = await submit(gw.url, file, fields, { route: '/api/transcribe/jobs/transcribe/asr' });
    expect(submitted.status).toBe(202);
    expect(submitted.body).toMatchObject({ engine: 'riva', status: 'queued' });
    const jobId = submitted.body.job_id as string;
    const events = await followStream<StatusEvent>(`${gw.url}/api/transcribe/jobs/stream/${jobId}`);
    const [row] = await gw.db.query(`SELECT attempts, engine, error_details FROM transcript_jobs WHERE job_id = $1`, [jobId]);
    return { jobId, last: events[events.length - 1], row };
  }

  it('transcribes through /transcribe/asr: completed, words in seconds, Riva config and metadata as sent by the adapter', async () => {
    // The whole recording (vad_filter=false), so the wire checks below see exactly the 11 s file.
    const { jobId, last, row } = await run(fixture('jfk.wav'), { language: 'en-US', vad_filter: 'false' });
    expect(last).toMatchObject({ status: 'completed', progress: 100 });
    expect(row).toMatchObject({ attempts: 1, engine: 'riva', error_details: null });
    expect(server.received).toHaveLength(1);
    const got = server.received[0];
    expect(got.config).toMatchObject({ encoding: 'LINEAR_PCM', sample_rate_hertz: 16000, audio_channel_count: 1, language_code: 'en-US', model: MODEL, enable_word_time_offsets: true });
    expect(got.audioBytes).toBe(11 * 32_000);
    expect(got.metadata.authorization).toBe('Bearer e2e');

    const { status: httpStatus, body } = await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${jobId}`);
    expect(httpStatus).toBe(200);
    expect(body).toMatchObject({ engine: 'riva', model: MODEL, language: 'en-US' });
    expect(body.duration).toBeCloseTo(11, 1);
    expect((body as unknown as { engine_seconds: number }).engine_seconds).toBeCloseTo(11, 2);
    expect(body.segments).toHaveLength(3);
    expect(body.segments[0].text).toBe('Good morning, thanks for calling.');
    const words = body.segments.flatMap((s) => s.words);
    // The test server spreads integer-ms word times over the audio: in seconds they all fall within the 11 s.
    expect(words[0].start).toBeCloseTo(0.12, 3);
    expect(Math.max(...words.map((w) => w.end))).toBeGreaterThan(10);
    expect(Math.max(...words.map((w) => w.end))).toBeLessThanOrEqual(11);
    // Diarization is on by default for an engine that can diarize: Riva's tags 1/2 come back as speakers 0/1.
    expect(got.config.diarization_config).toEqual({ enable_speaker_diarization: true, max_speaker_count: 8 });
    expect(body.segments.map((s) => s.speaker_tag)).toEqual([0, 1, 0]);
  });

  it('UNAVAILABLE once, then success: the job completes on attempt 2', async () => {
    server.script.push({ kind: 'error', code: status.UNAVAILABLE, message: 'Riva restarting' });
    const { last, row } = await run(fixture('goforward.wav'));
    expect(last).toMatchObject({ status: 'completed' });
    expect(row).toMatchObject({ attempts: 2, error_details: null });
    expect(server.received).toHaveLength(2);
  });

  it('INVALID_ARGUMENT: the job fails at once with error_details code ENGINE_REJECTED', async () => {
    server.script.push({ kind: 'error', code: status.INVALID_ARGUMENT, message: 'Unavailable model requested' });
    const { jobId, last, row } = await run(fixture('goforward.wav'));
    expect(last.status).toBe('failed');
    expect(last.error).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false });
    expect(row.attempts).toBe(1);
    // gRPC details are private: in Postgres under `internal`, never on the status or SSE.
    expect(row.error_details).toMatchObject({ code: 'ENGINE_REJECTED', engine: 'riva', upstream_status: 'INVALID_ARGUMENT', internal: { grpc_status: 'INVALID_ARGUMENT', grpc_details: 'Unavailable model requested' } });
    expect(JSON.stringify(last.error)).not.toContain('Unavailable model requested');
    expect(server.received).toHaveLength(1);
    expect((await getJson(`${gw.url}/api/transcribe/jobs/result/${jobId}`)).status).toBe(409);
  });

  it('/engines shows riva from the cached probes: available with models and languages; NOT_SERVING → unavailable', async () => {
    const engines = async () => (await getJson<EnginesView>(`${gw.url}/api/transcribe/jobs/engines`)).body.engines;
    const waitFor = async (available: boolean) => {
      // ENGINE_HEALTH_INTERVAL is 1 s in testConfig: the cached state follows within a few probes.
      for (let i = 0; i < 50 && (await engines()).riva?.available !== available; i++) await new Promise((r) => setTimeout(r, 200));
      return (await engines()).riva;
    };
    const up = await waitFor(true);
    expect(up).toMatchObject({
      available: true,
      diarization: true,
      word_boosting: true,
      details: { models: expect.arrayContaining([MODEL]), languages: expect.arrayContaining(['en-US']) },
    });
    // The models the probe listed are the engine's models (RIVA_MODEL, the default, first), not only RIVA_MODEL.
    expect(up.models).toEqual([MODEL, ...server.models.map((m) => m.model_name).filter((m) => m !== MODEL)]);
    expect(up.models.length).toBeGreaterThan(1);
    // The server's address is for the logs, not for clients.
    expect(JSON.stringify(up)).not.toContain(server.uri);
    server.healthStatus = 'NOT_SERVING';
    expect(await waitFor(false)).toMatchObject({ available: false, message: 'Riva reports NOT_SERVING' });
    expect((await engines()).pocketsphinx.available).toBe(true);
  });
  it('boosts the phrases of a stored context (context_id), one SpeechContext per boost level', async () => {
    const created = await fetch(`${gw.url}/api/transcribe/contexts`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'inauguration', language: 'en-US', boost: 20, phrases: ['fellow americans', { phrase: 'country', boost: 50 }] }),
    });
    expect(created.status).toBe(201);
    const context = (await created.json()) as { id: string };
    const { last } = await run(fixture('jfk.wav'), { context_id: context.id, max_speakers: '3' });
    expect(last.status).toBe('completed');
    const config = server.received[0].config;
    const byBoost = Object.fromEntries(config.speech_contexts.map((c) => [c.boost, c.phrases]));
    expect(byBoost).toEqual({ 20: ['fellow americans'], 50: ['country'] });
    expect(config.diarization_config).toMatchObject({ enable_speaker_diarization: true, max_speaker_count: 3 });
  });

  it('answers an unknown context with 404 and a context on an engine that cannot boost with 400 naming riva', async () => {
    const unknown = await submit(gw.url, fixture('goforward.wav'), { context_id: '0d6f7a3e-1111-4222-8333-944455566677' }, { route: '/api/transcribe/jobs/transcribe/riva' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'CONTEXT_NOT_FOUND' });
    const created = await fetch(`${gw.url}/api/transcribe/contexts`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'x', phrases: ['alpha'] }),
    });
    const { id } = (await created.json()) as { id: string };
    const wrongEngine = await submit(gw.url, fixture('goforward.wav'), { context_id: id, engine: 'pocketsphinx' });
    expect(wrongEngine.status).toBe(400);
    expect(wrongEngine.body.message).toMatch(/pocketsphinx does not support word boosting.*engines that can boost: riva/);
    expect(server.received).toHaveLength(0);
  });
  it('sends a long recording as silence-cut chunks, one Recognize each, with offsets added to every time', async () => {
    const { value } = parseRivaEnv({ RIVA_URI: server.uri, RIVA_MODEL: MODEL, RIVA_CHUNKING_THRESHOLD: '20', RIVA_CHUNK_DURATION: '12' });
    const chunked = new RivaEngine(value);
    const pocket = buildEngines({}).engines.find((e) => e.id === 'pocketsphinx')!;
    const small = await startGateway(testConfig({ JOB_BACKOFF_MS: '100' }), [pocket, chunked]);
    try {
      const recording = buildLongRecording(scratchDir('riva-long'), 50);
      const submitted = await submit(small.url, recording.path, {}, { route: '/api/transcribe/jobs/transcribe/riva' });
      const events = await followStream<StatusEvent & { chunks_total?: number }>(`${small.url}/api/transcribe/jobs/stream/${submitted.body.job_id}`);
      expect(events[events.length - 1].status).toBe('completed');
      const total = Math.max(...events.map((e) => e.chunks_total ?? 0));
      expect(total).toBeGreaterThanOrEqual(3);
      expect(server.received).toHaveLength(total);
      // Every request stays far below the gRPC message limits: ≤ 12 s × 1.2 of 16 kHz mono PCM.
      for (const r of server.received) expect(r.audioBytes).toBeLessThanOrEqual(12 * 1.2 * 32000 + 100);
      const result = (await getJson<ResultView>(`${small.url}/api/transcribe/jobs/result/${submitted.body.job_id}`)).body;
      const words = result.segments.flatMap((seg) => seg.words);
      for (let i = 1; i < words.length; i++) expect(words[i].start).toBeGreaterThanOrEqual(words[i - 1].start);
      // Later chunks' words land late in the recording: the offsets were added.
      expect(words[words.length - 1].end).toBeGreaterThan(recording.duration - 15);
      expect(words[words.length - 1].end).toBeLessThanOrEqual(result.duration);
    } finally {
      await small.close();
      chunked.close();
    }
  });
});
