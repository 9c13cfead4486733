import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import OpenAI, { APIError, APIUserAbortError, BadRequestError, InternalServerError, NotFoundError, PermissionDeniedError, toFile } from 'openai';
import { parseEnv } from '../../src/config/app-config.js';
import type { EngineAudio, TranscribeContext, TranscribeOptions, TranscriptionEngine, TranscriptionResult } from '../../src/engines/engine.spec.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { WhisperxConfig } from '../../src/engines/whisperx/whisperx.config.js';
import { WhisperxEngine } from '../../src/engines/whisperx/whisperx.engine.js';
import { startAsrWebserviceServer, type AsrWebserviceServer } from '../support/asr-webservice-server.js';
import { fixture, testConfig } from '../support/env.js';
import { FlakyEngine } from '../support/flaky-engine.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson } from '../support/http.js';
import { wordErrorRate } from '../support/wer.js';

/**
 * The OpenAI-compatible API (`/v1`) driven by the official `openai` npm SDK, against the real
 * gateway (Postgres, Redis, ffmpeg, pocketsphinx; WhisperX through its protocol test server).
 */

const GOFORWARD = 'go forward ten meters';
const pocketsphinx = () => buildEngines({}).engines[0];

/** Holds every transcription until `open()` (a job that is running for as long as a test needs). Ids must be Postgres enum values. */
class GateEngine implements TranscriptionEngine {
  readonly displayName = 'gated wrapper (tests)';
  private release!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));
  private markStarted!: () => void;
  /** Resolves when the first transcription has reached the engine. */
  readonly started = new Promise<void>((resolve) => (this.markStarted = resolve));

  constructor(private readonly inner: TranscriptionEngine, readonly id: string) {}

  get capabilities() {
    return this.inner.capabilities;
  }

  health(signal: AbortSignal) {
    return this.inner.health(signal);
  }

  open(): void {
    this.release();
  }

  async transcribe(audio: EngineAudio, options: TranscribeOptions, context: TranscribeContext): Promise<TranscriptionResult> {
    this.markStarted();
    await this.gate;
    return this.inner.transcribe(audio, options, context);
  }
}

interface JobRow { job_id: string; engine: string; engine_params: Record<string, unknown>; transcript_status: string; filename: string }

const jobRow = async (gw: TestGateway, where: string, value: string): Promise<JobRow | undefined> =>
  (await gw.db.query(`SELECT j.job_id, j.engine, j.engine_params, t.status AS transcript_status, t.filename FROM transcript_jobs j JOIN transcripts t ON t.id = j.transcript_id WHERE ${where} = $1`, [value]))[0];

/** SRT/VTT cue timings, in seconds. */
function cueTimes(text: string, separator: ',' | '.'): { start: number; end: number }[] {
  const sec = (h: string, m: string, s: string, ms: string) => Number(h) * 3600 + Number(m) * 60 + Number(s) + Number(ms) / 1000;
  const re = new RegExp(`^(\\d{2}):(\\d{2}):(\\d{2})\\${separator}(\\d{3}) --> (\\d{2}):(\\d{2}):(\\d{2})\\${separator}(\\d{3})$`, 'gm');
  return [...text.matchAll(re)].map((m) => ({ start: sec(m[1], m[2], m[3], m[4]), end: sec(m[5], m[6], m[7], m[8]) }));
}

describe('OpenAI-compatible API through the official openai SDK', () => {
  let server: AsrWebserviceServer;
  let gw: TestGateway;
  let client: OpenAI;
  const failing = new FlakyEngine(pocketsphinx(), 99, { code: 'ENGINE_REJECTED', retryable: false }, 'openai');
  const gated = new GateEngine(pocketsphinx(), 'riva');

  beforeAll(async () => {
    server = await startAsrWebserviceServer();
    const { value, problems } = parseEnv(WhisperxConfig, { WHISPERX_SERVICE_URL: server.url, WHISPERX_TIMEOUT: '60' });
    expect(problems).toEqual([]);
    gw = await startGateway(testConfig({ JOB_MAX_RETRIES: '1', JOB_BACKOFF_MS: '100' }), [pocketsphinx(), new WhisperxEngine(value), failing, gated]);
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused' });
  });
  afterAll(async () => {
    gated.open();
    await gw?.close();
    await server?.close();
  });

  it('transcribes with pocketsphinx: json {text, usage}, the job id header names a transcript_jobs row', async () => {
    const { data, response } = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'pocketsphinx' }).withResponse();
    expect(wordErrorRate([{ reference: GOFORWARD, hypothesis: data.text }])).toBeLessThanOrEqual(0.5);
    expect(data.usage).toEqual({ type: 'duration', seconds: expect.any(Number) });
    expect((data.usage as { seconds: number }).seconds).toBeGreaterThanOrEqual(1);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    // Same queue, engines and tables as the job API.
    const jobId = response.headers.get('x-transcription-job-id')!;
    expect(await jobRow(gw, 'j.job_id', jobId)).toMatchObject({ engine: 'pocketsphinx', transcript_status: 'completed', filename: 'goforward.wav' });
    const result = await getJson<{ text: string }>(`${gw.url}/api/transcribe/jobs/result/${jobId}`);
    expect(result.body.text).toBe(data.text);
  });

  it('verbose_json with word and segment granularities: words and segments inside the duration', async () => {
    const v = await client.audio.transcriptions.create({
      file: createReadStream(fixture('goforward.wav')),
      model: 'pocketsphinx',
      response_format: 'verbose_json',
      timestamp_granularities: ['word', 'segment'],
      language: 'en',
    });
    expect(v).toMatchObject({ task: 'transcribe', language: 'english', usage: { type: 'duration' } });
    expect(v.duration).toBeGreaterThan(1);
    expect(wordErrorRate([{ reference: GOFORWARD, hypothesis: v.text }])).toBeLessThanOrEqual(0.5);
    expect(v.words!.length).toBeGreaterThanOrEqual(3);
    for (const w of v.words!) {
      expect(w.start).toBeGreaterThanOrEqual(0);
      expect(w.end).toBeGreaterThanOrEqual(w.start);
      expect(w.end).toBeLessThanOrEqual(v.duration + 0.01);
    }
    expect(v.words!.map((w) => w.word).join(' ')).toBe(v.words!.map((w) => w.word).join(' ').trim());
    expect(v.segments!.length).toBeGreaterThanOrEqual(1);
    v.segments!.forEach((s, i) => {
      expect(s).toMatchObject({ id: i, seek: 0, tokens: [], temperature: 0, no_speech_prob: 0 });
      expect(s.end).toBeLessThanOrEqual(v.duration + 0.01);
      expect(s.avg_logprob).toBeLessThanOrEqual(0);
      expect(s.compression_ratio).toBeGreaterThan(0);
    });
    expect(v.segments!.map((s) => s.text.trim()).join(' ')).toBe(v.text.trim());
  });

  it('verbose_json without granularities has segments and no words (OpenAI default)', async () => {
    const v = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'pocketsphinx', response_format: 'verbose_json' });
    expect(v.segments!.length).toBeGreaterThanOrEqual(1);
    expect(v.words).toBeUndefined();
  });

  it('answers srt, vtt and text that parse, with cues inside the recording', async () => {
    const srt = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'pocketsphinx', response_format: 'srt' });
    const srtCues = cueTimes(srt, ',');
    expect(srtCues.length).toBeGreaterThanOrEqual(1);
    expect(srt).toMatch(/^1\n\d{2}:/);
    const vtt = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'pocketsphinx', response_format: 'vtt' });
    expect(vtt.startsWith('WEBVTT\n')).toBe(true);
    const vttCues = cueTimes(vtt, '.');
    expect(vttCues).toEqual(srtCues);
    for (const c of vttCues) expect(c.end).toBeGreaterThan(c.start);
    const spoken = srt.split('\n').filter((l) => l && !/^\d+$/.test(l) && !l.includes('-->')).join(' ');
    expect(wordErrorRate([{ reference: GOFORWARD, hypothesis: spoken }])).toBeLessThanOrEqual(0.5);

    const text = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'pocketsphinx', response_format: 'text' });
    expect(text.endsWith('\n')).toBe(true);
    expect(wordErrorRate([{ reference: GOFORWARD, hypothesis: text }])).toBeLessThanOrEqual(0.5);
  });

  it('routes whisper-1 to the default engine', async () => {
    const { data, response } = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'whisper-1' }).withResponse();
    expect(wordErrorRate([{ reference: GOFORWARD, hypothesis: data.text }])).toBeLessThanOrEqual(0.5);
    expect(await jobRow(gw, 'j.job_id', response.headers.get('x-transcription-job-id')!)).toMatchObject({ engine: 'pocketsphinx' });
  });

  it('streams transcript.text.delta events that concatenate to transcript.text.done', async () => {
    const stream = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'pocketsphinx', stream: true });
    const events = [];
    for await (const event of stream) events.push(event);
    const done = events[events.length - 1];
    expect(done.type).toBe('transcript.text.done');
    const deltas = events.slice(0, -1);
    expect(deltas.length).toBeGreaterThanOrEqual(1);
    expect(deltas.every((e) => e.type === 'transcript.text.delta')).toBe(true);
    const text = (done as { text: string }).text;
    expect(deltas.map((e) => (e as { delta: string }).delta).join('')).toBe(text);
    expect(wordErrorRate([{ reference: GOFORWARD, hypothesis: text }])).toBeLessThanOrEqual(0.5);
  });

  it('lists engines and engine:model ids as models, and retrieves one', async () => {
    const ids = [];
    for await (const model of client.models.list()) {
      expect(model).toMatchObject({ object: 'model', owned_by: 'transcription-gateway', created: expect.any(Number) });
      ids.push(model.id);
    }
    expect(ids).toEqual(expect.arrayContaining(['whisper-1', 'pocketsphinx', 'whisperx', 'whisperx:base', 'whisperx:large-v3']));
    expect(await client.models.retrieve('whisperx:large-v3')).toMatchObject({ id: 'whisperx:large-v3', object: 'model' });
    await expect(client.models.retrieve('whisperx:huge')).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
  });

  it('answers an unknown model 404 model_not_found, listing the models', async () => {
    const error = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'gpt-4o-transcribe' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found', param: 'model', type: 'invalid_request_error' });
    expect((error as APIError).message).toMatch(/gpt-4o-transcribe.*pocketsphinx/);
  });

  it('answers a text file 400 in the OpenAI error shape', async () => {
    const file = await toFile(Buffer.from('these are meeting notes, not audio\n'), 'notes.txt', { type: 'text/plain' });
    const error = await client.audio.transcriptions.create({ file, model: 'pocketsphinx' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ status: 400, param: 'file', type: 'invalid_request_error', code: 'audio_unreadable' });

    const form = new FormData();
    form.append('model', 'pocketsphinx');
    form.append('file', new Blob(['these are meeting notes, not audio\n'], { type: 'text/plain' }), 'notes.txt');
    const res = await fetch(`${gw.url}/v1/audio/transcriptions`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error).toEqual({ message: expect.stringMatching(/.+/), type: 'invalid_request_error', param: 'file', code: 'audio_unreadable' });
  });

  it('answers bad or inconsistent fields 400 naming the param', async () => {
    const file = () => createReadStream(fixture('goforward.wav'));
    await expect(client.audio.transcriptions.create({ file: file(), model: 'pocketsphinx', response_format: 'diarized_json' })).rejects.toMatchObject({ status: 400, param: 'response_format', code: 'invalid_value' });
    await expect(client.audio.transcriptions.create({ file: file(), model: 'pocketsphinx', timestamp_granularities: ['word'] })).rejects.toMatchObject({ status: 400, param: 'timestamp_granularities' });
    await expect(client.audio.transcriptions.create({ file: file(), model: 'pocketsphinx', response_format: 'srt', stream: true })).rejects.toMatchObject({ status: 400, param: 'stream' });
    await expect(client.audio.transcriptions.create({ file: file(), model: 'pocketsphinx', temperature: 3 })).rejects.toMatchObject({ status: 400, param: 'temperature' });
    await expect(client.audio.transcriptions.create({ file: file(), model: 'pocketsphinx', known_speaker_names: ['agent'] })).rejects.toMatchObject({ status: 400, param: 'known_speaker_names', code: 'unknown_parameter' });

    const form = new FormData();
    form.append('model', 'pocketsphinx');
    const res = await fetch(`${gw.url}/v1/audio/transcriptions`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { message: expect.stringMatching(/file/), type: 'invalid_request_error', param: 'file', code: 'missing_required_parameter' } });
    // Uploads refused by validation (after multer wrote them) are not left behind.
    expect(await readdir(path.join(gw.config.TEMP_DIR, 'uploads'))).toEqual([]);
  });

  it('accepts temperature and reports it ignored in x-transcription-warnings', async () => {
    const { data, response } = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'pocketsphinx', temperature: 0.2 }).withResponse();
    expect(data.text.length).toBeGreaterThan(0);
    expect(JSON.parse(response.headers.get('x-transcription-warnings')!)).toEqual(expect.arrayContaining([expect.stringMatching(/temperature is ignored/)]));
  });

  it('answers a failed job 500 server_error with the engine code, once (x-should-retry: false stops SDK retries)', async () => {
    const before = failing.calls;
    const error = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'openai' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 500, type: 'server_error', code: 'engine_rejected' });
    expect((error as APIError).message).toMatch(/injected failure/);
    const headers = (error as APIError).headers!;
    expect(headers.get('x-should-retry')).toBe('false');
    // One submission, one engine call: neither the SDK (maxRetries 2) nor the gateway (non-retryable) tried again.
    expect(failing.calls).toBe(before + 1);
    expect(await jobRow(gw, 'j.job_id', headers.get('x-transcription-job-id')!)).toMatchObject({ engine: 'openai', transcript_status: 'failed' });
  });

  it('a streamed failed job ends with an error event the SDK raises', async () => {
    const stream = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'openai', stream: true });
    const seen: unknown[] = [];
    const error = await (async () => {
      for await (const event of stream) seen.push(event);
    })().catch((e: unknown) => e);
    expect(seen).toEqual([]);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ code: 'engine_rejected', type: 'server_error' });
  });

  it('routes engine:model to that engine with that model (whisperx:large-v3)', async () => {
    const before = server.requests.length;
    const { data, response } = await client.audio.transcriptions
      .create({ file: createReadStream(fixture('tts/dialogue_2spk.wav')), model: 'whisperx:large-v3', response_format: 'verbose_json', timestamp_granularities: ['word'], language: 'en', prompt: 'Harvard sentences' })
      .withResponse();
    expect(server.requests.length).toBe(before + 1);
    expect(server.requests[before].query).toMatchObject({ model: 'large-v3', language: 'en', initial_prompt: 'Harvard sentences' });
    expect(data.text).toMatch(/^The birch canoe slid on the smooth planks\./);
    expect(data.language).toBe('english');
    expect(data.segments).toBeUndefined();
    expect(data.words!.length).toBeGreaterThan(50);
    const row = await jobRow(gw, 'j.job_id', response.headers.get('x-transcription-job-id')!);
    expect(row).toMatchObject({ engine: 'whisperx', transcript_status: 'completed', engine_params: { model: 'large-v3', language: 'en' } });
  });

  it('streams one delta per segment of a multi-segment result (whisperx)', async () => {
    const stream = await client.audio.transcriptions.create({ file: createReadStream(fixture('tts/dialogue_2spk.wav')), model: 'whisperx', stream: true, response_format: 'text' });
    const events = [];
    for await (const event of stream) events.push(event);
    const done = events.pop() as { type: string; text: string };
    expect(done.type).toBe('transcript.text.done');
    expect(done.text).toMatch(/^The birch canoe slid on the smooth planks\./);
    // The test server answers the ten Harvard sentences as ten segments.
    expect(events).toHaveLength(10);
    expect(events.map((e) => (e as { delta: string }).delta).join('')).toBe(done.text);
    expect((events[1] as { delta: string }).delta).toMatch(/^ \S/);
  });

  it('a client that disconnects stops waiting; the job still completes', async () => {
    const filename = `disconnect-${randomUUID()}.wav`;
    const file = await toFile(createReadStream(fixture('goforward.wav')), filename);
    const abort = new AbortController();
    const request = client.audio.transcriptions.create({ file, model: 'riva' }, { signal: abort.signal, maxRetries: 0 });
    await gated.started;
    abort.abort();
    await expect(request).rejects.toBeInstanceOf(APIUserAbortError);
    const row = await jobRow(gw, 't.filename', filename);
    expect(row).toMatchObject({ engine: 'riva' });
    gated.open();
    const events = await followStream<{ status: string }>(`${gw.url}/api/transcribe/jobs/stream/${row!.job_id}`);
    expect(events[events.length - 1].status).toBe('completed');
  });
});

describe('OpenAI-compatible API: OPENAI_API_WAIT_TIMEOUT_MS', () => {
  let gw: TestGateway;
  const gated = new GateEngine(pocketsphinx(), 'pocketsphinx');

  beforeAll(async () => {
    gw = await startGateway(testConfig({ OPENAI_API_WAIT_TIMEOUT_MS: '1000' }), [gated]);
  });
  afterAll(async () => {
    gated.open();
    await gw?.close();
  });

  it('answers 504 with the job id when the job outlasts the wait; the job completes and can be fetched', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused' });
    const error = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'whisper-1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 504, type: 'server_error', code: 'transcription_timeout' });
    const headers = (error as APIError).headers!;
    expect(headers.get('x-should-retry')).toBe('false');
    const jobId = headers.get('x-transcription-job-id')!;
    expect((error as APIError).message).toContain(jobId);
    gated.open();
    const events = await followStream<{ status: string }>(`${gw.url}/api/transcribe/jobs/stream/${jobId}`);
    expect(events[events.length - 1].status).toBe('completed');
    const result = await getJson<{ text: string }>(`${gw.url}/api/transcribe/jobs/result/${jobId}`);
    expect(wordErrorRate([{ reference: GOFORWARD, hypothesis: result.body.text }])).toBeLessThanOrEqual(0.5);
  });
});

describe('OpenAI-compatible API: API keys', () => {
  let gw: TestGateway;
  const key = `sk-gateway-${randomUUID()}`;

  beforeAll(async () => {
    gw = await startGateway(testConfig({ API_KEYS: key }), [pocketsphinx()]);
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('takes the SDK apiKey as the gateway key (Authorization: Bearer) and refuses others in the OpenAI shape', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key });
    const text = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'whisper-1', response_format: 'text' });
    expect(wordErrorRate([{ reference: GOFORWARD, hypothesis: text }])).toBeLessThanOrEqual(0.5);

    const wrong = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-not-a-gateway-key' });
    const error = await wrong.models.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error).toMatchObject({ status: 403, type: 'invalid_request_error', code: 'invalid_api_key' });

    const anonymous = await fetch(`${gw.url}/v1/models`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
  });
});
