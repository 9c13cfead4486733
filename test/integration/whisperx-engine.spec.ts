import { closeSync, ftruncateSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { wavHeader } from '../../src/audio/wav.js';
import { parseEnv } from '../../src/config/app-config.js';
import { EngineError } from '../../src/engines/engine.error.js';
import type { EngineAudio, EngineProgress, TranscriptionResult } from '../../src/engines/engine.spec.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { WhisperxConfig } from '../../src/engines/whisperx/whisperx.config.js';
import { WhisperxEngine } from '../../src/engines/whisperx/whisperx.engine.js';
import { parseWavHeader, startAsrWebserviceServer, type AsrServerOptions, type AsrWebserviceServer } from '../support/asr-webservice-server.js';
import { fixture } from '../support/env.js';
import { peakBufferGrowth, startSinkServer } from '../support/sink-server.js';

const DIALOGUE = fixture('tts/dialogue_2spk.wav');
const dialogueAudio = (): EngineAudio => ({ path: DIALOGUE, duration_sec: parseWavHeader(readFileSync(DIALOGUE))!.durationSec, max_volume_db: -3 });

function engineFor(url: string, env: Record<string, string> = {}): WhisperxEngine {
  const { value, problems } = parseEnv(WhisperxConfig, { WHISPERX_SERVICE_URL: url, ...env });
  expect(problems).toEqual([]);
  return new WhisperxEngine(value);
}

const call = () => ({ signal: new AbortController().signal });
const failure = async (promise: Promise<unknown>): Promise<EngineError> => {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(EngineError);
  return error as EngineError;
};

describe('WhisperxEngine against a whisper-asr-webservice test server', () => {
  const servers: AsrWebserviceServer[] = [];
  const serve = async (options: AsrServerOptions = {}) => {
    const server = await startAsrWebserviceServer(options);
    servers.push(server);
    return server;
  };
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  describe('a diarized result', () => {
    let server: AsrWebserviceServer;
    let result: TranscriptionResult;
    const progress: EngineProgress[] = [];

    beforeAll(async () => {
      // pyannote numbers speakers in its own order: here the first to talk is SPEAKER_01.
      server = await startAsrWebserviceServer({ json: { relabel: (_, label) => (label === 'SPEAKER_00' ? 'SPEAKER_01' : 'SPEAKER_00') } });
      result = await engineFor(server.url).transcribe(
        dialogueAudio(),
        { model: 'large-v3', prompt: 'Harvard sentences, 1984', diarization: { enabled: true, min_speakers: 2, max_speakers: 3 } },
        { ...call(), onProgress: (p) => progress.push(p) },
      );
    });
    afterAll(() => server.close());

    it('sends the whole WAV as multipart audio_file with every option in the query', () => {
      expect(server.requests).toHaveLength(1);
      const request = server.requests[0];
      expect(request.query).toEqual({
        task: 'transcribe', output: 'json', word_timestamps: 'true', encode: 'true',
        initial_prompt: 'Harvard sentences, 1984', diarize: 'true', min_speakers: '2', max_speakers: '3', model: 'large-v3',
      });
      expect(request.query.language).toBeUndefined();
      expect(request.fields).toEqual(['audio_file']);
      expect(request.file).toMatchObject({ field: 'audio_file', filename: 'dialogue_2spk.wav', type: 'audio/wav', size: statSync(DIALOGUE).size });
      expect(request.file!.wav).toMatchObject({ sampleRate: 16000, channels: 1, bitsPerSample: 16 });
      // Streamed with an exact length, not chunked.
      expect(request.contentType).toMatch(/^multipart\/form-data; boundary=/);
      expect(request.transferEncoding).toBeUndefined();
      expect(request.contentLength).toBeGreaterThan(statSync(DIALOGUE).size);
    });

    it('numbers speakers by first appearance, the same on segments and words', () => {
      expect(result.segments).toHaveLength(10);
      // Turns alternate between the two voices; the first voice (pyannote's SPEAKER_01) is 0.
      expect(result.segments.map((s) => s.speaker_tag)).toEqual([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
      for (const segment of result.segments) {
        for (const word of segment.words) expect(word.speaker_tag).toBe(segment.speaker_tag);
      }
    });

    it('keeps words without times, interpolated between their neighbours and flagged', () => {
      const words = result.segments.flatMap((s) => s.words);
      const interpolated = words.filter((w) => w.interpolated);
      expect(interpolated.map((w) => w.word)).toEqual(['1984.', '100%']);
      for (const w of interpolated) expect(w.confidence).toBeNull();
      expect(words.filter((w) => !w.interpolated).every((w) => w.confidence !== null && w.confidence >= 0 && w.confidence <= 1)).toBe(true);

      // "100%" sits between "is" and "hard": its time is the gap between them.
      const tenth = result.segments[9].words;
      const i = tenth.findIndex((w) => w.word === '100%');
      expect(tenth[i - 1].word).toBe('is');
      expect(tenth[i].start).toBeCloseTo(tenth[i - 1].end, 3);
      expect(tenth[i].end).toBeCloseTo(tenth[i + 1].start, 3);
      expect(tenth[i].end).toBeGreaterThan(tenth[i].start);
      // "1984." ends its segment: it starts after the last aligned word, inside the segment.
      const seventh = result.segments[6];
      const last = seventh.words[seventh.words.length - 1];
      expect(last).toMatchObject({ word: '1984.', interpolated: true });
      expect(last.start).toBeGreaterThanOrEqual(seventh.words[seventh.words.length - 2].end);
      expect(last.end).toBeLessThanOrEqual(seventh.end);

      let previous = 0;
      for (const w of words) {
        expect(w.start).toBeGreaterThanOrEqual(previous);
        expect(w.end).toBeGreaterThanOrEqual(w.start);
        expect(w.end).toBeLessThanOrEqual(result.duration_sec);
        expect(Math.round(w.start * 1000) / 1000).toBe(w.start);
        previous = w.start;
      }
      for (const s of result.segments) {
        expect(s.start).toBeLessThanOrEqual(s.words[0].start);
        expect(s.end).toBeGreaterThanOrEqual(s.words[s.words.length - 1].end);
      }
      expect(result.warnings.join(' ')).toMatch(/2 word\(s\) came without times/);
    });

    it('returns the detected language, text, confidences, model and stage progress', () => {
      expect(result.language).toBe('en');
      expect(result.text.startsWith('The birch canoe slid on the smooth planks. Glue the sheet')).toBe(true);
      expect(result.text).toContain('100% hard to sell.');
      expect(result.engine).toEqual({ id: 'whisperx', model: 'large-v3' });
      const first = result.segments[0];
      const scores = first.words.map((w) => w.confidence!);
      expect(first.confidence).toBeCloseTo(scores.reduce((a, b) => a + b, 0) / scores.length, 3);
      expect(progress.map((p) => p.stage)).toEqual(['uploading', 'recognizing', 'done']);
      expect(progress.map((p) => p.fraction)).toEqual([0.05, 0.1, 1]);
    });
  });

  it('sends ISO-639-1 for a BCP-47 language, no diarization when not asked, and keeps the given language', async () => {
    const server = await serve();
    const result = await engineFor(server.url).transcribe(dialogueAudio(), { language: 'de-DE' }, call());
    expect(server.requests[0].query).toMatchObject({ language: 'de', diarize: 'false', model: 'base' });
    expect(server.requests[0].query.min_speakers).toBeUndefined();
    expect(server.requests[0].query.initial_prompt).toBeUndefined();
    expect(result.language).toBe('de');
    expect(result.segments.every((s) => s.speaker_tag === null && s.words.every((w) => w.speaker_tag === null))).toBe(true);
    expect(result.engine.model).toBe('base');
  });

  it('translates with task=translate: the spoken language is sent, the result is English (en), words and speakers kept', async () => {
    const server = await serve();
    const result = await engineFor(server.url).transcribe(dialogueAudio(), { task: 'translate', language: 'de-DE', diarization: { enabled: true } }, call());
    expect(server.requests[0].query).toMatchObject({ task: 'translate', language: 'de', diarize: 'true', output: 'json' });
    // whisper-asr-webservice reports the spoken language (de) also for a translation.
    expect(result.language).toBe('en');
    expect(result.segments.flatMap((s) => s.words).length).toBeGreaterThan(10);
    expect(new Set(result.segments.map((s) => s.speaker_tag))).toEqual(new Set([0, 1]));
    expect(engineFor(server.url).capabilities.translation).toBe(true);
  });

  it('does not send model to a stock whisper-asr-webservice (WHISPERX_SEND_MODEL=false) and says so when one was asked for', async () => {
    const server = await serve({ flavour: 'stock' });
    const engine = engineFor(server.url, { WHISPERX_SEND_MODEL: 'false', WHISPERX_AVAILABLE_MODELS: 'large-v3,medium', WHISPERX_DEFAULT_MODEL: 'large-v3' });
    const result = await engine.transcribe(dialogueAudio(), { model: 'medium', diarization: { enabled: true } }, call());
    expect(server.requests[0].query).not.toHaveProperty('model');
    expect(server.requests[0].query.diarize).toBe('true');
    expect(result.engine.model).toBe('large-v3');
    expect(result.warnings.join(' ')).toMatch(/fixed model.*'medium' was not sent/);
    expect(new Set(result.segments.map((s) => s.speaker_tag))).toEqual(new Set([0, 1]));
  });

  it('rejects a model outside WHISPERX_AVAILABLE_MODELS and an unknown language before any upload', async () => {
    const server = await serve();
    const engine = engineFor(server.url, { WHISPERX_AVAILABLE_MODELS: 'base,small' });
    expect(await failure(engine.transcribe(dialogueAudio(), { model: 'large-v3' }, call()))).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false });
    expect(await failure(engine.transcribe(dialogueAudio(), { language: 'xx-YY' }, call()))).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false });
    expect(server.requests).toHaveLength(0);
  });

  it('streams a 512 MiB recording from disk with an exact length, without holding it', async () => {
    const bytes = 512 * 1024 * 1024;
    const big = path.join(os.tmpdir(), `gw-whisperx-big-${process.pid}.wav`);
    // A sparse file: a valid 16 kHz mono header and 512 MiB of silence that costs no disk.
    const fd = openSync(big, 'w');
    writeSync(fd, wavHeader(bytes));
    ftruncateSync(fd, 44 + bytes);
    closeSync(fd);
    const sink = await startSinkServer({ language: 'en', segments: [] });
    try {
      const progress: string[] = [];
      const growth = await peakBufferGrowth(() =>
        engineFor(sink.url).transcribe({ path: big, duration_sec: bytes / 32_000, max_volume_db: -91 }, {}, { ...call(), onProgress: (p) => progress.push(p.stage!) }),
      );
      const [received] = await sink.stats();
      expect(received).toMatchObject({ transferEncoding: null });
      expect(received.bytes).toBe(received.contentLength);
      expect(received.bytes).toBeGreaterThan(bytes);
      expect(growth).toBeLessThan(bytes / 4);
      expect(progress).toEqual(['uploading', 'recognizing', 'done']);
    } finally {
      sink.close();
      rmSync(big, { force: true });
    }
  });

  it('refuses a redirect (undici would keep the whole body to replay it): ENGINE_BAD_RESPONSE', async () => {
    const sink = await startSinkServer({});
    try {
      const error = await failure(engineFor(`${sink.url}/redirect`).transcribe(dialogueAudio(), {}, call()));
      expect(error).toMatchObject({ code: 'ENGINE_BAD_RESPONSE', retryable: true, message: expect.stringMatching(/redirect/) });
    } finally {
      sink.close();
    }
  });

  it('warns that word boosting is not supported', async () => {
    const server = await serve();
    const result = await engineFor(server.url).transcribe(dialogueAudio(), { word_boosts: [{ phrases: ['canoe'], boost: 10 }] }, call());
    expect(result.warnings.join(' ')).toMatch(/does not support word boosting/);
  });

  describe('maps each failure to an EngineError of the right class', () => {
    const cases: { script: AsrServerOptions['script']; code: string; retryable: boolean; status?: number; detail?: RegExp }[] = [
      { script: ['unavailable'], code: 'ENGINE_UNAVAILABLE', retryable: true, status: 503, detail: /CUDA out of memory/ },
      { script: ['internal'], code: 'ENGINE_INTERNAL', retryable: true, status: 500 },
      { script: ['overloaded'], code: 'ENGINE_OVERLOADED', retryable: true, status: 429 },
      { script: ['unauthorized'], code: 'ENGINE_UNAUTHORIZED', retryable: false, status: 401 },
      { script: ['bad_request'], code: 'ENGINE_REJECTED', retryable: false, status: 400, detail: /could not be decoded/ },
      { script: ['malformed'], code: 'ENGINE_BAD_RESPONSE', retryable: true, status: 200 },
      { script: ['wrong_shape'], code: 'ENGINE_BAD_RESPONSE', retryable: true, status: 200 },
      { script: ['reset'], code: 'ENGINE_UNAVAILABLE', retryable: true },
    ];
    it.each(cases)('$script → $code (retryable: $retryable)', async ({ script, code, retryable, status, detail }) => {
      const server = await serve({ script });
      const error = await failure(engineFor(server.url).transcribe(dialogueAudio(), {}, call()));
      expect(error).toMatchObject({ code, retryable, engineId: 'whisperx' });
      if (status !== undefined) expect(error.details.http_status).toBe(status);
      if (detail) expect(String(error.details.detail)).toMatch(detail);
      // The server's text and address stay private.
      if (detail) expect(error.message).not.toMatch(detail);
      expect(JSON.stringify(error)).not.toContain(server.url.slice('http://'.length));
      expect(server.requests).toHaveLength(1);
    });

    it('passes Retry-After of a 503 on in the details', async () => {
      const server = await serve({ script: ['unavailable'] });
      const error = await failure(engineFor(server.url).transcribe(dialogueAudio(), {}, call()));
      expect(error.details).toMatchObject({ retry_after_sec: 2 });
      expect(error.toJSON()).toEqual({ code: 'ENGINE_UNAVAILABLE', message: 'whisperx answered HTTP 503', engine: 'whisperx', upstream_status: 503 });
    });

    it('names the wrong shape in the message', async () => {
      const server = await serve({ script: ['wrong_shape'] });
      const error = await failure(engineFor(server.url).transcribe(dialogueAudio(), {}, call()));
      expect(error.message).toMatch(/\$\.segments is not an array/);
    });

    it('a missing audio file → ENGINE_INTERNAL, retryable, without its path, nothing sent', async () => {
      const server = await serve();
      const gone = `${DIALOGUE}.gone`;
      const error = await failure(engineFor(server.url).transcribe({ ...dialogueAudio(), path: gone }, {}, call()));
      expect(error).toMatchObject({ code: 'ENGINE_INTERNAL', retryable: true, details: { path: gone } });
      expect(JSON.stringify(error)).not.toContain(gone);
      expect(server.requests).toHaveLength(0);
    });

    it('connection refused → ENGINE_UNAVAILABLE, retryable', async () => {
      const server = await serve();
      const url = server.url;
      await server.close();
      const error = await failure(engineFor(url).transcribe(dialogueAudio(), {}, call()));
      expect(error).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true, message: 'whisperx cannot be reached (ECONNREFUSED)' });
      expect(error.details).toMatchObject({ network_code: 'ECONNREFUSED', url });
    });

    it('no answer within WHISPERX_TIMEOUT → ENGINE_TIMEOUT, retryable', async () => {
      const server = await serve({ script: ['slow'], slowMs: 10_000 });
      const error = await failure(engineFor(server.url, { WHISPERX_TIMEOUT: '1' }).transcribe(dialogueAudio(), {}, call()));
      expect(error).toMatchObject({ code: 'ENGINE_TIMEOUT', retryable: true, details: { timeout_sec: 1 } });
    });

    it('abort → ENGINE_CANCELLED, not retryable', async () => {
      const server = await serve({ script: ['slow'], slowMs: 10_000 });
      const controller = new AbortController();
      const pending = engineFor(server.url).transcribe(dialogueAudio(), {}, {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.stage === 'recognizing') controller.abort();
        },
      });
      expect(await failure(pending)).toMatchObject({ code: 'ENGINE_CANCELLED', retryable: false });
    });
  });

  describe('health', () => {
    const probe = (engine: WhisperxEngine) => engine.health(AbortSignal.timeout(2000));

    it('is available with the service details from GET /health', async () => {
      const server = await serve();
      const health = await probe(engineFor(server.url));
      expect(health).toMatchObject({ available: true, details: { device: 'cuda', loaded_models: ['large-v3'], diarization_available: true } });
      expect(server.gets).toEqual(['/health']);
    });

    it('is unavailable when /health reports an error, the server\'s text kept private', async () => {
      const server = await serve({ health: 'error' });
      const health = await probe(engineFor(server.url));
      expect(health).toMatchObject({ available: false, message: 'GET /health answered 503', details: { http_status: 503 }, internal: { detail: 'the service is shutting down' } });
    });

    it('shows no URL in the details of an available engine', async () => {
      const server = await serve();
      const health = await probe(engineFor(server.url));
      expect(health.details).not.toHaveProperty('url');
      expect(health.internal).toEqual({ url: server.url });
    });

    it('falls back to GET /docs on a stock whisper-asr-webservice and says what it cannot know', async () => {
      const server = await serve({ flavour: 'stock' });
      const health = await probe(engineFor(server.url, { WHISPERX_SEND_MODEL: 'false' }));
      expect(health).toMatchObject({ available: true, details: { stock: true } });
      expect(health.message).toMatch(/no \/health.*unknown/);
      expect(server.gets).toEqual(['/health', '/docs']);
    });

    it('is unavailable, without throwing, when nothing listens', async () => {
      const server = await serve();
      const url = server.url;
      await server.close();
      const down = await probe(engineFor(url));
      expect(down).toMatchObject({ available: false, message: 'GET /health failed: ECONNREFUSED', internal: { url } });
      expect(JSON.stringify([down.message, down.details])).not.toContain(url.slice('http://'.length));
      const aborted = AbortSignal.abort();
      expect(await engineFor(url).health(aborted)).toMatchObject({ available: false });
    });
  });

  describe('capabilities and configuration', () => {
    it('reports diarization and language detection, no word boosting, the default model first, whole-file calls', () => {
      const engine = engineFor('http://whisperx:9000', { WHISPERX_DEFAULT_MODEL: 'large-v3' });
      expect(engine.capabilities).toMatchObject({
        diarization: true, word_boosting: false, word_timestamps: true, language_detection: true,
        max_duration_sec: null, chunking_threshold_sec: null, chunk_duration_sec: null, whole_file: true,
      });
      expect(engine.capabilities.models).toEqual(['large-v3', 'tiny', 'base', 'small', 'medium', 'large-v2']);
      expect(engine.capabilities.languages).toEqual(expect.arrayContaining(['en', 'de', 'yue', 'haw']));
      expect(engine.capabilities.languages).toHaveLength(100);
    });

    it('is enabled by WHISPERX_SERVICE_URL or WHISPERX_ENABLED=true, off by default, and validated only when on', () => {
      const ids = (env: Record<string, string>) => buildEngines({ POCKETSPHINX_ENABLED: 'false', ...env }).engines.map((e) => e.id);
      expect(ids({})).toEqual([]);
      expect(ids({ WHISPERX_SERVICE_URL: 'http://gpu-box:9000' })).toEqual(['whisperx']);
      expect(ids({ WHISPERX_ENABLED: 'true' })).toEqual(['whisperx']);
      expect(ids({ WHISPERX_ENABLED: 'false', WHISPERX_SERVICE_URL: 'http://gpu-box:9000' })).toEqual([]);
      expect(buildEngines({ WHISPERX_DEFAULT_MODEL: 'huge', WHISPERX_TIMEOUT: 'soon' }).problems).toEqual([]);
      const problems = buildEngines({ WHISPERX_ENABLED: 'true', WHISPERX_DEFAULT_MODEL: 'huge', WHISPERX_TIMEOUT: 'soon' }).problems.join('\n');
      expect(problems).toMatch(/WHISPERX_DEFAULT_MODEL must be one of WHISPERX_AVAILABLE_MODELS/);
      expect(problems).toMatch(/WHISPERX_TIMEOUT/);
    });
  });
});
