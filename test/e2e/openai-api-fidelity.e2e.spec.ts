import { createReadStream } from 'node:fs';
import { randomUUID } from 'node:crypto';
import OpenAI, { APIError, BadRequestError, NotFoundError } from 'openai';
import { parseEnv } from '../../src/config/app-config.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { WhisperRocmConfig, whisperRocmInstance } from '../../src/engines/openai-compatible/openai-compatible.config.js';
import { OpenAiCompatibleEngine } from '../../src/engines/openai-compatible/openai-compatible.engine.js';
import { fixture, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { startOpenAiTranscriptionServer, type OpenAiTranscriptionServer } from '../support/openai-transcription-server.js';
import { wordErrorRate } from '../support/wer.js';

/**
 * Where the OpenAI-compatible API follows OpenAI's own behaviour, checked through the official
 * `openai` SDK against the real gateway (Postgres, Redis, ffmpeg, pocketsphinx, and whisper-rocm
 * through its OpenAI-protocol test server): granularities with json, a missing model, stream with
 * whisper-1, the error shape on every `/v1` answer (unknown URLs and methods included), and the
 * real model names in `/v1/models`.
 */

const GOFORWARD = 'go forward ten meters';

/** The error an SDK call raised, as an APIError (fails the test when it resolved). */
async function sdkError(call: Promise<unknown>): Promise<APIError> {
  const error = await call.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(APIError);
  return error as APIError;
}

describe('OpenAI API fidelity through the official openai SDK', () => {
  let server: OpenAiTranscriptionServer;
  let gw: TestGateway;
  let client: OpenAI;
  const key = `sk-gateway-${randomUUID()}`;

  beforeAll(async () => {
    server = await startOpenAiTranscriptionServer({ loadedModel: 'large-v3' });
    const whisperRocm = new OpenAiCompatibleEngine(whisperRocmInstance(parseEnv(WhisperRocmConfig, { WHISPER_ROCM_URL: server.url }).value));
    gw = await startGateway(testConfig({ API_KEYS: key }), [buildEngines({}).engines[0], whisperRocm]);
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
    // The loaded model's name comes from whisper-rocm's health probe: wait for the first one.
    for (let i = 0; i < 100; i++) {
      const engines = (await (await fetch(`${gw.url}/api/transcribe/jobs/engines`, { headers: { 'x-api-key': key } })).json()) as { engines: Record<string, { available: boolean }> };
      if (engines.engines['whisper-rocm']?.available) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
  afterAll(async () => {
    await gw?.close();
    await server?.close();
  });

  const file = () => createReadStream(fixture('goforward.wav'));

  it('accepts response_format=json with timestamp_granularities[]=segment (OpenAI refuses only word)', async () => {
    const { data, response } = await client.audio.transcriptions.create({ file: file(), model: 'pocketsphinx', response_format: 'json', timestamp_granularities: ['segment'] }).withResponse();
    expect(wordErrorRate([{ reference: GOFORWARD, hypothesis: data.text }])).toBeLessThanOrEqual(0.5);
    expect(Object.keys(data).sort()).toEqual(['text', 'usage']);
    expect(JSON.parse(response.headers.get('x-transcription-warnings')!)).toEqual([expect.stringMatching(/timestamp_granularities is used only with response_format=verbose_json/)]);

    const error = await sdkError(client.audio.transcriptions.create({ file: file(), model: 'pocketsphinx', response_format: 'json', timestamp_granularities: ['word'] }));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ status: 400, param: 'timestamp_granularities', code: 'invalid_value', type: 'invalid_request_error' });
    expect(error.message).toMatch(/word needs response_format=verbose_json/);
  });

  it('answers a missing model with one message that lists the accepted models', async () => {
    const error = await sdkError(client.audio.transcriptions.create({ file: file(), model: undefined as unknown as string }));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ status: 400, param: 'model', code: 'missing_required_parameter', type: 'invalid_request_error' });
    expect(error.error).toEqual({ message: expect.any(String), type: 'invalid_request_error', param: 'model', code: 'missing_required_parameter' });
    const message = (error.error as { message: string }).message;
    expect(message).toMatch(/^model is required; accepted: whisper-1, pocketsphinx, pocketsphinx:\S+, whisper-rocm, whisper-rocm:large-v3 \(see GET \/v1\/models\)$/);
    expect(message).not.toMatch(/200 characters/);
  });

  it('ignores stream=true for whisper-1, as OpenAI does: a plain json answer, with a warning', async () => {
    const response = await client.audio.transcriptions.create({ file: file(), model: 'whisper-1', stream: true }).asResponse();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await response.json()) as { text: string; usage: { type: string } };
    expect(wordErrorRate([{ reference: GOFORWARD, hypothesis: body.text }])).toBeLessThanOrEqual(0.5);
    expect(body.usage.type).toBe('duration');
    expect(JSON.parse(response.headers.get('x-transcription-warnings')!)).toEqual(expect.arrayContaining([expect.stringMatching(/stream is ignored for whisper-1/)]));
    // OpenAI ignores stream for whisper-1 whatever the format: srt with stream is answered as srt, not refused.
    const srt = await client.audio.transcriptions.create({ file: file(), model: 'whisper-1', response_format: 'srt', stream: true }).asResponse();
    expect(srt.status).toBe(200);
    expect(await srt.text()).toMatch(/^1\n\d{2}:\d{2}:\d{2},\d{3} --> /);
  });

  it('answers an unknown URL under /v1 in OpenAI\'s shape (404 unknown_url), naming the routes', async () => {
    const error = await sdkError(client.get('/audio/speech-to-morse'));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'unknown_url', param: null, type: 'invalid_request_error' });
    expect(error.message).toMatch(/Unknown request URL: GET \/v1\/audio\/speech-to-morse\. This gateway serves POST \/v1\/audio\/transcriptions, POST \/v1\/audio\/translations, GET \/v1\/models/);

    const raw = await fetch(`${gw.url}/v1/nothing/here?x=1`, { method: 'POST', headers: { Authorization: `Bearer ${key}` } });
    expect(raw.status).toBe(404);
    expect(await raw.json()).toEqual({ error: { message: expect.stringMatching(/^Unknown request URL: POST \/v1\/nothing\/here\./), type: 'invalid_request_error', param: null, code: 'unknown_url' } });
    // Outside /v1 the gateway's own shape stays.
    const native = await fetch(`${gw.url}/api/transcribe/nothing`, { headers: { Authorization: `Bearer ${key}` } });
    expect(native.status).toBe(404);
    expect(await native.json()).toMatchObject({ statusCode: 404, code: 'ROUTE_NOT_FOUND', message: 'no route GET /api/transcribe/nothing; the API\'s routes are listed at /docs' });
  });

  it('answers a wrong method on a known route 405 method_not_allowed with Allow', async () => {
    const error = await sdkError(client.get('/audio/transcriptions'));
    expect(error).toMatchObject({ status: 405, code: 'method_not_allowed', param: null, type: 'invalid_request_error' });
    expect(error.message).toBe('405 GET is not allowed on /v1/audio/transcriptions; use POST');
    expect(error.headers?.get('allow')).toBe('POST');
    const onModels = await sdkError(client.delete('/models/whisper-1'));
    expect(onModels).toMatchObject({ status: 405, code: 'method_not_allowed' });
    expect(onModels.headers?.get('allow')).toBe('GET, HEAD');
  });

  it('answers an unknown field with OpenAI\'s unknown_parameter, one message naming the accepted fields', async () => {
    const error = await sdkError(client.audio.transcriptions.create({ file: file(), model: 'pocketsphinx', known_speaker_names: ['agent'] } as never));
    expect(error).toMatchObject({ status: 400, param: 'known_speaker_names', code: 'unknown_parameter' });
    expect(typeof (error.error as { message: unknown }).message).toBe('string');
    expect(error.message).toMatch(/Unrecognized request argument supplied: known_speaker_names \(accepted: .*model.*response_format.*timestamp_granularities/);
  });

  it('answers a malformed JSON body under /v1 in OpenAI\'s shape', async () => {
    const res = await fetch(`${gw.url}/v1/audio/transcriptions`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: '{"model": ' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error).toEqual({ type: 'invalid_request_error', message: expect.any(String), param: null, code: 'invalid_value' });
  });

  it('lists real model names (whisper-rocm:large-v3, not whisper-rocm:whisper-1) and takes whisper-1 as an alias', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(expect.arrayContaining(['whisper-1', 'pocketsphinx', 'whisper-rocm', 'whisper-rocm:large-v3']));
    expect(ids).not.toContain('whisper-rocm:whisper-1');
    expect(await client.models.retrieve('whisper-rocm:whisper-1')).toMatchObject({ id: 'whisper-rocm:whisper-1', object: 'model' });

    const before = server.requests.length;
    const real = await client.audio.transcriptions.create({ file: createReadStream(fixture('jfk.wav')), model: 'whisper-rocm:large-v3', language: 'en' });
    expect(real.text).toMatch(/ask not what your country can do for you/i);
    const alias = await client.audio.transcriptions.create({ file: createReadStream(fixture('jfk.wav')), model: 'whisper-rocm:whisper-1', language: 'en' });
    expect(alias.text).toBe(real.text);
    const sent = server.requests.slice(before).filter((r) => r.path === '/v1/audio/transcriptions').map((r) => r.fields.model?.[0]);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    // The service takes whisper-1 for the model it loaded.
    expect(new Set(sent)).toEqual(new Set(['whisper-1']));
  });
});
