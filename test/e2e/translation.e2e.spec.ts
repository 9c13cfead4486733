import { createReadStream } from 'node:fs';
import OpenAI, { BadRequestError } from 'openai';
import type { TranslationVerbose } from 'openai/resources/audio/translations';
import { parseEnv } from '../../src/config/app-config.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { OpenAiConfig, openAiInstance, WhisperRocmConfig, whisperRocmInstance } from '../../src/engines/openai-compatible/openai-compatible.config.js';
import { OpenAiCompatibleEngine } from '../../src/engines/openai-compatible/openai-compatible.engine.js';
import { parseRivaEnv } from '../../src/engines/riva/riva.config.js';
import { RivaEngine } from '../../src/engines/riva/riva.engine.js';
import { WhisperxConfig } from '../../src/engines/whisperx/whisperx.config.js';
import { WhisperxEngine } from '../../src/engines/whisperx/whisperx.engine.js';
import { startAsrWebserviceServer, type AsrWebserviceServer } from '../support/asr-webservice-server.js';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';
import { startOpenAiTranscriptionServer, type OpenAiTranscriptionServer } from '../support/openai-transcription-server.js';
import { buildLongRecording } from '../support/recordings.js';
import { RivaTestServer } from '../support/riva-server.js';

/**
 * Translation (`task=translate`: English text from speech in any language) through the real
 * gateway (HTTP, BullMQ, Postgres, ffmpeg, VAD) against the engines' protocol test servers:
 * whisper-rocm and `openai` (OpenAI API, `POST /v1/audio/translations`), whisperx
 * (whisper-asr-webservice, `task=translate`); pocketsphinx and riva cannot translate.
 */

interface StatusView { status: string; task: string; engine: string; chunks_total?: number }
interface ResultView {
  status: string; task: string; language: string | null; duration: number; text: string; engine: string; warnings: string[];
  segments: { start: number; end: number; text: string; words: { word: string; start: number; end: number }[] }[];
}
interface ErrorBody { statusCode: number; code: string; message: string; translation_engines?: string[] }

const JFK_TEXT = 'And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.';
const TRANSLATING = ['whisper-rocm', 'whisperx', 'openai'];
const OPENAI_KEY = 'sk-test-translation';

describe('translation (task=translate) through the gateway', () => {
  let rocmServer: OpenAiTranscriptionServer;
  let openaiServer: OpenAiTranscriptionServer;
  let asrServer: AsrWebserviceServer;
  let rivaServer: RivaTestServer;
  let riva: RivaEngine;
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    rocmServer = await startOpenAiTranscriptionServer();
    openaiServer = await startOpenAiTranscriptionServer({ apiKey: OPENAI_KEY });
    asrServer = await startAsrWebserviceServer();
    rivaServer = await RivaTestServer.start();
    const env = <T extends object>(cls: new () => T, values: Record<string, string>): T => {
      const { value, problems } = parseEnv(cls, values);
      expect(problems).toEqual([]);
      return value;
    };
    // Chunked past 20 s in ~12 s pieces, so that a 45 s recording is translated piece by piece.
    const whisperRocm = new OpenAiCompatibleEngine(whisperRocmInstance(env(WhisperRocmConfig, {
      WHISPER_ROCM_URL: rocmServer.url, WHISPER_ROCM_CHUNKING_THRESHOLD: '20', WHISPER_ROCM_CHUNK_DURATION: '12', WHISPER_ROCM_CONCURRENCY: '2',
    })));
    const openai = new OpenAiCompatibleEngine(openAiInstance(env(OpenAiConfig, {
      OPENAI_ENABLED: 'true', OPENAI_BASE_URL: `${openaiServer.url}/v1`, OPENAI_API_KEY: OPENAI_KEY, OPENAI_HEALTH_PATH: '/health',
    })));
    const whisperx = new WhisperxEngine(env(WhisperxConfig, { WHISPERX_SERVICE_URL: asrServer.url, WHISPERX_TIMEOUT: '60' }));
    const rivaEnv = parseRivaEnv({ RIVA_URI: rivaServer.uri });
    expect(rivaEnv.problems).toEqual([]);
    riva = new RivaEngine(rivaEnv.value);
    const pocketsphinx = buildEngines({}).engines.find((e) => e.id === 'pocketsphinx')!;
    // pocketsphinx stays the default engine (DEFAULT_TRANSCRIPTION_ENGINE), as in a fresh install.
    gw = await startGateway(testConfig({ JOB_BACKOFF_MS: '100' }), [pocketsphinx, whisperRocm, whisperx, openai, riva]);
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused' });
  });
  afterAll(async () => {
    await gw?.close();
    riva?.close();
    await Promise.all([rocmServer?.close(), openaiServer?.close(), asrServer?.close(), rivaServer?.stop()]);
  });

  const transcriptCount = async () => Number((await gw.db.query('SELECT count(*)::int AS n FROM transcripts'))[0].n);
  const engineParams = async (jobId: string) => (await gw.db.query('SELECT engine_params FROM transcript_jobs WHERE job_id = $1', [jobId]))[0].engine_params as Record<string, unknown>;

  /** Submits, follows the job to its end, and returns its last status event and result. */
  async function translate(file: string, fields: Record<string, string>, route?: string): Promise<{ jobId: string; last: StatusView; result: ResultView }> {
    const submitted = await submit(gw.url, file, fields, route ? { route } : {});
    expect(submitted.status).toBe(202);
    const jobId = submitted.body.job_id as string;
    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${jobId}`);
    const last = events[events.length - 1];
    const { status, body } = await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${jobId}`);
    expect(status).toBe(200);
    return { jobId, last, result: body };
  }

  it('/engines shows which engines can translate', async () => {
    const { body } = await getJson<{ engines: Record<string, { translation: boolean }> }>(`${gw.url}/api/transcribe/jobs/engines`);
    const flags = Object.fromEntries(Object.entries(body.engines).map(([id, e]) => [id, e.translation]));
    expect(flags).toEqual({ pocketsphinx: false, 'whisper-rocm': true, whisperx: true, openai: true, riva: false });
  });

  it('whisper-rocm: the server gets POST /v1/audio/translations with the translation fields only; the result is English', async () => {
    rocmServer.requests.length = 0;
    const { jobId, last, result } = await translate(fixture('jfk.mp3'), { engine: 'whisper-rocm', task: 'translate', language: 'de', prompt: 'Kennedy.', vad_filter: 'false' });
    expect(last).toMatchObject({ status: 'completed', task: 'translate', engine: 'whisper-rocm' });
    expect(result).toMatchObject({ status: 'completed', task: 'translate', language: 'en', text: JFK_TEXT, engine: 'whisper-rocm' });
    // The OpenAI translation API takes no language: the adapter says so instead of sending it.
    expect(result.warnings).toEqual([expect.stringContaining('translations API takes no language')]);
    expect(result.segments.length).toBe(2);

    expect(rocmServer.transcriptions()).toHaveLength(0);
    const [request] = rocmServer.translations();
    expect(rocmServer.translations()).toHaveLength(1);
    expect(request.status).toBe(200);
    expect(Object.keys(request.fields).sort()).toEqual(['model', 'prompt', 'response_format', 'temperature']);
    expect(request.fields).toMatchObject({ response_format: ['verbose_json'], prompt: ['Kennedy.'] });
    expect(request.file!.wav).toMatchObject({ sampleRate: 16_000, channels: 1, bitsPerSample: 16 });
    // Recorded with the job, also once Redis has forgotten it.
    expect(await engineParams(jobId)).toMatchObject({ task: 'translate', language: 'de' });
    const status = await getJson<StatusView>(`${gw.url}/api/transcribe/jobs/status/${jobId}`);
    expect(status.body).toMatchObject({ status: 'completed', task: 'translate' });
  });

  it('openai engine (per-engine route): the translation request carries the key; a transcription still goes to /transcriptions', async () => {
    openaiServer.requests.length = 0;
    const translated = await translate(fixture('jfk.wav'), { task: 'translate' }, '/api/transcribe/jobs/transcribe/openai');
    expect(translated.result).toMatchObject({ task: 'translate', language: 'en', text: JFK_TEXT, engine: 'openai', warnings: [] });
    expect(openaiServer.translations()).toHaveLength(1);
    expect(openaiServer.translations()[0]).toMatchObject({ authorization: `Bearer ${OPENAI_KEY}`, status: 200 });

    const transcribed = await translate(fixture('jfk.wav'), {}, '/api/transcribe/jobs/transcribe/openai');
    expect(transcribed.result).toMatchObject({ task: 'transcribe', language: 'en' });
    expect(transcribed.last.task).toBe('transcribe');
    expect(openaiServer.transcriptions()).toHaveLength(1);
    expect(openaiServer.transcriptions()[0].fields['timestamp_granularities[]']).toEqual(['segment', 'word']);
    expect(await engineParams(transcribed.jobId)).toMatchObject({ task: 'transcribe' });
  });

  it('whisperx: /asr gets task=translate with the spoken language; the result language is en, not the spoken one', async () => {
    asrServer.requests.length = 0;
    const { result } = await translate(fixture('tts/dialogue_2spk.wav'), { engine: 'whisperx', task: 'translate', language: 'de' });
    expect(asrServer.requests).toHaveLength(1);
    expect(asrServer.requests[0].query).toMatchObject({ task: 'translate', language: 'de', output: 'json' });
    expect(result).toMatchObject({ task: 'translate', language: 'en', engine: 'whisperx' });
    expect(result.segments.length).toBeGreaterThan(3);
    expect(result.segments.flatMap((s) => s.words).length).toBeGreaterThan(10);
  });

  it.each([
    ['pocketsphinx', { engine: 'pocketsphinx' }, undefined],
    ['riva', { engine: 'riva' }, undefined],
    ['riva', {}, '/api/transcribe/jobs/transcribe/asr'],
  ])('%s cannot translate: 400 naming the engines that can, nothing stored', async (engine, fields, route) => {
    const before = await transcriptCount();
    const { status, body } = await submit(gw.url, fixture('jfk.wav'), { ...fields, task: 'translate' }, route ? { route } : {});
    expect(status).toBe(400);
    const error = body as unknown as ErrorBody;
    expect(error.code).toBe('INVALID_OPTION');
    expect(typeof error.message).toBe('string');
    expect(error.message).toContain(`engine ${engine} cannot translate`);
    for (const id of TRANSLATING) expect(error.message).toContain(id);
    expect(error.translation_engines).toEqual(['whisper-rocm', 'whisperx', 'openai']);
    expect(await transcriptCount()).toBe(before);
  });

  it('a task other than transcribe or translate is a 400 that lists both', async () => {
    const { status, body } = await submit(gw.url, fixture('jfk.wav'), { engine: 'whisper-rocm', task: 'summarize' });
    expect(status).toBe(400);
    expect(JSON.stringify(body.message)).toContain('task must be one of: transcribe, translate');
  });

  it('translates a long recording through chunk jobs: every piece goes to /v1/audio/translations', async () => {
    rocmServer.requests.length = 0;
    const recording = buildLongRecording(scratchDir('translate-long'), 45);
    const submitted = await submit(gw.url, recording.path, { engine: 'whisper-rocm', task: 'translate' });
    expect(submitted.status).toBe(202);
    const jobId = submitted.body.job_id as string;
    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${jobId}`);
    expect(events[events.length - 1]).toMatchObject({ status: 'completed', task: 'translate' });
    expect(Math.max(...events.map((e) => e.chunks_total ?? 0))).toBeGreaterThanOrEqual(3);

    const pieces = rocmServer.translations();
    expect(pieces.length).toBeGreaterThanOrEqual(3);
    expect(rocmServer.transcriptions()).toHaveLength(0);
    for (const piece of pieces) {
      expect(piece.status).toBe(200);
      expect(piece.fields.language).toBeUndefined();
      expect(piece.file!.wav!.durationSec).toBeLessThanOrEqual(20);
    }
    const { body } = await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${jobId}`);
    expect(body).toMatchObject({ task: 'translate', language: 'en', engine: 'whisper-rocm' });
    // Each piece's translation, in order, on the recording's timeline.
    expect(body.segments.length).toBe(2 * pieces.length);
    for (let i = 1; i < body.segments.length; i++) expect(body.segments[i].start).toBeGreaterThanOrEqual(body.segments[i - 1].start);
    expect(body.segments[body.segments.length - 1].end).toBeLessThanOrEqual(body.duration);
  });

  describe('POST /v1/audio/translations through the official openai SDK', () => {
    it('json: {text}, the engine got a translation request; the job is a task=translate job', async () => {
      rocmServer.requests.length = 0;
      const { data, response } = await client.audio.translations.create({ file: createReadStream(fixture('jfk.wav')), model: 'whisper-rocm' }).withResponse();
      expect(data).toEqual({ text: JFK_TEXT });
      expect(rocmServer.translations()).toHaveLength(1);
      const jobId = response.headers.get('x-transcription-job-id')!;
      expect(await engineParams(jobId)).toMatchObject({ task: 'translate' });
    });

    it('verbose_json: task translate, language english, segments in seconds, no words', async () => {
      // The SDK's overloads type a verbose_json translation as Translation; the body is TranslationVerbose.
      const v = (await client.audio.translations.create({ file: createReadStream(fixture('jfk.wav')), model: 'whisperx', response_format: 'verbose_json' })) as unknown as TranslationVerbose;
      expect(v).toMatchObject({ task: 'translate', language: 'english', text: expect.any(String) });
      expect(v.duration).toBeCloseTo(11, 0);
      expect(v.segments!.length).toBeGreaterThan(0);
      for (const s of v.segments!) expect(s.end).toBeLessThanOrEqual(v.duration + 0.01);
      expect(v).not.toHaveProperty('words');
    });

    it.each(['text', 'srt', 'vtt'] as const)('%s: subtitles/text of the translation', async (format) => {
      const text = await client.audio.translations.create({ file: createReadStream(fixture('jfk.wav')), model: 'openai', response_format: format });
      expect(typeof text).toBe('string');
      expect(text as unknown as string).toContain('ask what you can do for your country.');
      if (format === 'srt') expect(text).toMatch(/^1\n\d{2}:\d{2}:\d{2},\d{3} --> /);
      if (format === 'vtt') expect(text).toMatch(/^WEBVTT/);
    });

    it('whisper-1 goes to the first engine that can translate when the default engine (pocketsphinx) cannot', async () => {
      rocmServer.requests.length = 0;
      const { data, response } = await client.audio.translations.create({ file: createReadStream(fixture('jfk.wav')), model: 'whisper-1' }).withResponse();
      expect(data.text).toBe(JFK_TEXT);
      const jobId = response.headers.get('x-transcription-job-id')!;
      expect((await gw.db.query('SELECT engine FROM transcript_jobs WHERE job_id = $1', [jobId]))[0].engine).toBe('whisper-rocm');
      expect(rocmServer.translations()).toHaveLength(1);
    });

    it('a model whose engine cannot translate is a BadRequestError naming the models that can', async () => {
      const before = await transcriptCount();
      const err = await client.audio.translations.create({ file: createReadStream(fixture('jfk.wav')), model: 'pocketsphinx' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadRequestError);
      const e = err as BadRequestError;
      expect(e.param).toBe('model');
      expect(e.code).toBe('invalid_value');
      expect(e.message).toContain('whisper-rocm, whisperx, openai');
      expect(await transcriptCount()).toBe(before);
    });

    it('language is not a translation field: 400 unknown_parameter in OpenAI shape', async () => {
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(1000)], { type: 'audio/wav' }), 'a.wav');
      form.append('model', 'whisper-rocm');
      form.append('language', 'de');
      const res = await fetch(`${gw.url}/v1/audio/translations`, { method: 'POST', body: form });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: { message: expect.stringContaining('language'), type: 'invalid_request_error', param: 'language', code: 'unknown_parameter' } });
    });
  });
});
