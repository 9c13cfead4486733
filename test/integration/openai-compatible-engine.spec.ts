import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { wavHeader } from '../../src/audio/wav.js';
import { EngineError } from '../../src/engines/engine.error.js';
import type { EngineAudio, EngineProgress, TranscriptionResult } from '../../src/engines/engine.spec.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { OpenAiCompatibleEngine, type OpenAiCompatibleInstance } from '../../src/engines/openai-compatible/openai-compatible.engine.js';
import { fixture, scratchDir } from '../support/env.js';
import { startOpenAiTranscriptionServer, wavInfo, type OpenAiTranscriptionServer, type ServerBehaviour } from '../support/openai-transcription-server.js';
import { peakBufferGrowth, startSinkServer } from '../support/sink-server.js';
import { references, wordErrorRate } from '../support/wer.js';

const JFK_TEXT = 'And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.';

/** Decodes a fixture to the gateway's engine input (16 kHz mono s16le WAV, canonical 44-byte header) with ffmpeg. */
function engineAudio(dir: string, source: string, extra: string[] = []): EngineAudio {
  const out = path.join(dir, `${path.basename(source)}.${extra.length ? 'cut.' : ''}16k.wav`);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', source, ...extra, '-ac', '1', '-ar', '16000', '-c:a', 'pcm_s16le', '-fflags', '+bitexact', '-f', 'wav', out]);
  return { path: out, duration_sec: (statSync(out).size - 44) / 32_000, max_volume_db: -3 };
}

function instance(url: string, overrides: Partial<OpenAiCompatibleInstance> = {}): OpenAiCompatibleInstance {
  return {
    id: 'whisper-rocm',
    displayName: 'test',
    baseUrl: url,
    model: 'whisper-1',
    timeoutMs: 30_000,
    healthPath: '/health',
    chunkingThresholdSec: 300,
    chunkDurationSec: 120,
    concurrency: 1,
    translation: true,
    ...overrides,
  };
}

const run = (engine: OpenAiCompatibleEngine, audio: EngineAudio, options = {}, signal = new AbortController().signal) =>
  engine.transcribe(audio, options, { signal });

async function failure(promise: Promise<unknown>): Promise<EngineError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(EngineError);
  return err as EngineError;
}

function expectWellFormed(result: TranscriptionResult) {
  let last = 0;
  for (const segment of result.segments) {
    expect(segment.start).toBeGreaterThanOrEqual(last);
    expect(segment.end).toBeGreaterThanOrEqual(segment.start);
    expect(segment.end).toBeLessThanOrEqual(result.duration_sec);
    for (const word of segment.words) {
      expect(word.start).toBeGreaterThanOrEqual(segment.start);
      expect(word.end).toBeLessThanOrEqual(segment.end);
      expect(word.start).toBeGreaterThanOrEqual(last);
      expect(word.end).toBeGreaterThanOrEqual(word.start);
      expect(Math.round(word.start * 1000) / 1000).toBe(word.start);
      last = word.start;
    }
    last = Math.max(last, segment.start);
  }
}

describe('OpenAiCompatibleEngine against an OpenAI-transcription-protocol server', () => {
  const dir = scratchDir('openai');
  let server: OpenAiTranscriptionServer;
  let jfk: EngineAudio;

  beforeAll(async () => {
    server = await startOpenAiTranscriptionServer({ loadedModel: 'medium' });
    // The MP3 is the same speech as jfk.wav: a real decode, as the gateway's audio module does.
    jfk = engineAudio(dir, fixture('jfk.mp3'));
  });
  afterAll(async () => {
    await server?.close();
  });

  describe('result mapping and what is sent', () => {
    it('maps verbose_json to segments and words in seconds, inside their segments, with language and confidences', async () => {
      const progress: EngineProgress[] = [];
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      const result = await engine.transcribe(jfk, { language: 'en-US' }, { signal: new AbortController().signal, onProgress: (p) => progress.push(p) });

      expect(result.text).toBe(JFK_TEXT);
      expect(wordErrorRate([{ reference: references().get('jfk')!, hypothesis: result.text }])).toBe(0);
      expect(result.language).toBe('en');
      expect(result.engine).toEqual({ id: 'whisper-rocm', model: 'whisper-1' });
      expect(result.warnings).toEqual([]);
      expect(result.duration_sec).toBeCloseTo(jfk.duration_sec, 2);
      expect(result.segments).toHaveLength(2);
      const [first, second] = result.segments;
      expect(first).toMatchObject({ text: 'And so my fellow Americans, ask not what your country can do for you,', speaker_tag: null });
      expect(second.text).toBe('ask what you can do for your country.');
      // exp(avg_logprob): the segments' geometric-mean token probability.
      expect(first.confidence).toBeCloseTo(Math.exp(-0.1802), 3);
      expect(second.confidence).toBeCloseTo(Math.exp(-0.2231), 3);
      expect(first.words.map((w) => w.word)).toEqual(['And', 'so', 'my', 'fellow', 'Americans,', 'ask', 'not', 'what', 'your', 'country', 'can', 'do', 'for', 'you,']);
      expect(second.words).toHaveLength(8);
      for (const word of [...first.words, ...second.words]) expect(word).toMatchObject({ confidence: null, speaker_tag: null });
      // Times are the server's seconds (scaled to this audio's length), not ms.
      const scale = jfk.duration_sec / 11;
      expect(first.words[0].start).toBeCloseTo(0.06 * scale, 2);
      expect(second.words.at(-1)!.end).toBeCloseTo(10.46 * scale, 2);
      expectWellFormed(result);
      expect(progress).toEqual([{ fraction: 0.1, stage: 'uploading' }, { fraction: 1, stage: 'recognizing' }]);
    });

    it('sends one multipart request: file as a 16 kHz mono WAV, model, language, prompt, verbose_json, both granularities, temperature, bearer key', async () => {
      const keyed = await startOpenAiTranscriptionServer({ apiKey: 'sk-test-123' });
      try {
        const engine = new OpenAiCompatibleEngine(instance(`${keyed.url}/v1/`, { apiKey: 'sk-test-123', model: 'medium' }));
        await run(engine, jfk, { language: 'en-US', prompt: 'Inaugural address, 1961.' });
        const [request] = keyed.transcriptions();
        expect(request).toMatchObject({ method: 'POST', path: '/v1/audio/transcriptions', authorization: 'Bearer sk-test-123', status: 200 });
        expect(request.contentType).toMatch(/^multipart\/form-data; boundary=/);
        expect(request.fields).toEqual({
          model: ['medium'],
          language: ['en'],
          prompt: ['Inaugural address, 1961.'],
          response_format: ['verbose_json'],
          'timestamp_granularities[]': ['segment', 'word'],
          temperature: ['0'],
        });
        const bytes = readFileSync(jfk.path);
        expect(request.file).toMatchObject({ filename: 'audio.wav', type: 'audio/wav', size: bytes.byteLength });
        // Streamed from disk with an exact length, not chunked.
        expect(request.transferEncoding).toBeNull();
        expect(request.contentLength).toBeGreaterThan(bytes.byteLength);
        expect(request.file!.wav).toEqual(wavInfo(bytes));
        expect(request.file!.wav).toMatchObject({ sampleRate: 16_000, channels: 1, bitsPerSample: 16 });
      } finally {
        await keyed.close();
      }
    });

    it('leaves language out when none is asked (detection) and reports the detected one; no Authorization without a key', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      const before = server.transcriptions().length;
      const result = await run(engine, jfk);
      const request = server.transcriptions()[before];
      expect(request.fields.language).toBeUndefined();
      expect(request.fields.prompt).toBeUndefined();
      expect(request.authorization).toBeNull();
      expect(result.language).toBe('en');
    });

    it('turns options it cannot honour into warnings and still transcribes', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      const before = server.transcriptions().length;
      const result = await run(engine, jfk, { language: 'xx-YY', diarization: { enabled: true }, word_boosts: [{ phrases: ['Americans'], boost: 10 }] });
      expect(result.warnings.join('\n')).toMatch(/diarization/);
      expect(result.warnings.join('\n')).toMatch(/word boosting/);
      expect(result.warnings.join('\n')).toMatch(/language 'xx-YY'/);
      expect(server.transcriptions()[before].fields.language).toBeUndefined();
      expect(result.segments.length).toBe(2);
    });

    it('names the language the server reports (German → de) and scales to a shorter real clip', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      const go = engineAudio(dir, fixture('goforward.wav'));
      const result = await run(engine, go, { language: 'de-DE' });
      expect(result.language).toBe('de');
      expect(result.duration_sec).toBeCloseTo(go.duration_sec, 2);
      expectWellFormed(result);
      expect(result.segments.at(-1)!.end).toBeLessThanOrEqual(go.duration_sec);
    });

    it('normalizes odd but valid bodies: unsorted, overlapping and out-of-range times, words outside segments, probabilities, unknown language names', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      server.enqueue({
        kind: 'respond',
        status: 200,
        body: {
          task: 'transcribe',
          language: 'Klingon',
          duration: 4.0,
          text: '  one two three four five  ',
          segments: [
            { id: 1, seek: 0, start: 2.5, end: 9.0, text: ' four five', tokens: [], temperature: 0, avg_logprob: 0.3, compression_ratio: 1, no_speech_prob: 0.01 },
            { id: 0, seek: 0, start: -0.2, end: 2.0004, text: ' one two three', tokens: [], temperature: 0, avg_logprob: -0.5, compression_ratio: 1, no_speech_prob: 0.01 },
          ],
          words: [
            { word: ' two ', start: 0.8, end: 1.3, probability: 0.91 },
            { word: 'one', start: 0.1, end: 0.9, probability: 1.2 },
            { word: 'three', start: 1.3, end: 2.3 },
            { word: 'four', start: 2.6, end: 3.1 },
            { word: 'five', start: 3.5, end: 5.0 },
            { word: '   ', start: 3.6, end: 3.7 },
          ],
        },
      });
      const result = await run(engine, jfk);
      expect(result.language).toBe('klingon');
      expect(result.text).toBe('one two three four five');
      expect(result.duration_sec).toBe(4);
      expect(result.segments.map((s) => [s.start, s.end, s.text])).toEqual([[0, 2, 'one two three'], [2.5, 4, 'four five']]);
      expect(result.segments[0].confidence).toBeCloseTo(Math.exp(-0.5), 3);
      expect(result.segments[1].confidence).toBe(1);
      // 'three' (midpoint 1.8) is in the first segment, whose end clamps it; 'five' ends at the duration.
      expect(result.segments[0].words.map((w) => [w.word, w.start, w.end, w.confidence])).toEqual([
        ['one', 0.1, 0.9, 1],
        ['two', 0.9, 1.3, 0.91],
        ['three', 1.3, 2, null],
      ]);
      expect(result.segments[1].words.map((w) => [w.word, w.start, w.end])).toEqual([['four', 2.6, 3.1], ['five', 3.5, 4]]);
      expectWellFormed(result);
    });

    it('assigns a word that lies between segments to the nearest one', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      server.enqueue({
        kind: 'respond',
        status: 200,
        body: {
          language: 'english', duration: 10, text: 'a b c',
          segments: [{ start: 0, end: 2, text: 'a' }, { start: 6, end: 8, text: 'b c' }],
          words: [{ word: 'a', start: 0.5, end: 1 }, { word: 'b', start: 4.9, end: 5.3 }, { word: 'c', start: 6.5, end: 7 }],
        },
      });
      const result = await run(engine, jfk);
      expect(result.segments[0].words.map((w) => w.word)).toEqual(['a']);
      expect(result.segments[1].words.map((w) => [w.word, w.start, w.end])).toEqual([['b', 6, 6], ['c', 6.5, 7]]);
    });

    it('reads words nested in segments (whisper.cpp\'s server) when there is no top-level words list', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      server.enqueue({
        kind: 'respond',
        status: 200,
        body: {
          task: 'transcribe', language: 'english', duration: 2.79, text: ' Go forward ten meters.',
          segments: [{
            id: 0, text: ' Go forward ten meters.', start: 0.0, end: 2.4, tokens: [50364, 1037, 2128, 2064, 8146, 13], temperature: 0, avg_logprob: -0.31, no_speech_prob: 0.02,
            words: [
              { word: ' Go', start: 0.32, end: 0.56, t_dtw: -1, probability: 0.97 },
              { word: ' forward', start: 0.56, end: 1.02, t_dtw: -1, probability: 0.99 },
              { word: ' ten', start: 1.1, end: 1.5, t_dtw: -1, probability: 0.88 },
              { word: ' meters.', start: 1.5, end: 2.4, t_dtw: -1, probability: 0.93 },
            ],
          }],
        },
      });
      const result = await run(engine, jfk);
      expect(result.segments).toHaveLength(1);
      expect(result.segments[0].words.map((w) => [w.word, w.confidence])).toEqual([['Go', 0.97], ['forward', 0.99], ['ten', 0.88], ['meters.', 0.93]]);
      expect(result.warnings).toEqual([]);
    });

    it('builds one segment when the server sends words only, and reports an empty transcript as no speech', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      server.enqueue(
        { kind: 'respond', status: 200, body: { text: 'hello there', words: [{ word: 'hello', start: 0.2, end: 0.6 }, { word: 'there', start: 0.7, end: 1.1 }] } },
        { kind: 'respond', status: 200, body: { task: 'transcribe', language: 'english', duration: 11, text: '', segments: [], words: [] } },
      );
      const wordsOnly = await run(engine, jfk);
      expect(wordsOnly.segments).toHaveLength(1);
      expect(wordsOnly.segments[0]).toMatchObject({ start: 0.2, end: 1.1, text: 'hello there', confidence: null });
      expect(wordsOnly.segments[0].words).toHaveLength(2);
      expect(wordsOnly.duration_sec).toBeCloseTo(jfk.duration_sec, 3);
      expect(wordsOnly.warnings.join('\n')).toMatch(/no segments/);
      const empty = await run(engine, jfk);
      expect(empty).toMatchObject({ text: '', segments: [], language: 'en' });
      expect(empty.warnings).toContain('no speech found');
    });
  });

  describe('streaming the upload', () => {
    it('sends a 512 MiB recording from disk without holding it: the process grows by a fraction of it', async () => {
      const bytes = 512 * 1024 * 1024;
      const big = path.join(dir, 'big.wav');
      // A sparse file: a valid 16 kHz mono header and 512 MiB of silence that costs no disk.
      const fd = openSync(big, 'w');
      writeSync(fd, wavHeader(bytes));
      ftruncateSync(fd, 44 + bytes);
      closeSync(fd);
      const sink = await startSinkServer({ text: '', language: 'english', duration: 1, segments: [] });
      try {
        const engine = new OpenAiCompatibleEngine(instance(sink.url));
        const growth = await peakBufferGrowth(() => run(engine, { path: big, duration_sec: bytes / 32_000, max_volume_db: -91 }));
        const [received] = await sink.stats();
        expect(received).toMatchObject({ path: '/v1/audio/transcriptions', transferEncoding: null });
        expect(received.bytes).toBe(received.contentLength);
        expect(received.bytes).toBeGreaterThan(bytes);
        expect(growth).toBeLessThan(bytes / 4);
      } finally {
        sink.close();
        rmSync(big, { force: true });
      }
    });

    it('refuses a redirect (undici would keep the whole body to replay it): ENGINE_BAD_RESPONSE, retryable', async () => {
      const sink = await startSinkServer({});
      try {
        const err = await failure(run(new OpenAiCompatibleEngine(instance(`${sink.url}/redirect`)), jfk));
        expect(err).toMatchObject({ code: 'ENGINE_BAD_RESPONSE', retryable: true, message: expect.stringMatching(/redirect/) });
        expect(JSON.stringify(err)).not.toContain(sink.url.slice('http://'.length));
      } finally {
        sink.close();
      }
    });
  });

  describe('translation (task=translate)', () => {
    it('POSTs /v1/audio/translations with OpenAI\'s translation fields only and reports English', async () => {
      const keyed = await startOpenAiTranscriptionServer({ apiKey: 'sk-test-123' });
      try {
        const progress: EngineProgress[] = [];
        const engine = new OpenAiCompatibleEngine(instance(keyed.url, { apiKey: 'sk-test-123' }));
        const result = await engine.transcribe(jfk, { task: 'translate', prompt: 'Inaugural address, 1961.' }, { signal: new AbortController().signal, onProgress: (p) => progress.push(p) });

        expect(keyed.transcriptions()).toHaveLength(0);
        const [request] = keyed.translations();
        expect(request).toMatchObject({ method: 'POST', path: '/v1/audio/translations', authorization: 'Bearer sk-test-123', status: 200 });
        expect(request.fields).toEqual({ model: ['whisper-1'], prompt: ['Inaugural address, 1961.'], response_format: ['verbose_json'], temperature: ['0'] });
        expect(request.file!.wav).toMatchObject({ sampleRate: 16_000, channels: 1, bitsPerSample: 16 });

        expect(result).toMatchObject({ text: JFK_TEXT, language: 'en', engine: { id: 'whisper-rocm', model: 'whisper-1' } });
        // The translations endpoint has no word timestamps: segments only, and no warning about the expected absence.
        expect(result.warnings).toEqual([]);
        expect(result.segments.map((s) => s.words.length)).toEqual([0, 0]);
        expectWellFormed(result);
        expect(progress.at(-1)).toEqual({ fraction: 1, stage: 'translating' });
      } finally {
        await keyed.close();
      }
    });

    it('does not send a requested language (the translations API has none) and says so', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      const before = server.translations().length;
      const result = await run(engine, jfk, { task: 'translate', language: 'de' });
      const request = server.translations()[before];
      expect(request.status).toBe(200);
      expect(request.fields.language).toBeUndefined();
      expect(result.language).toBe('en');
      expect(result.warnings).toEqual(["the translations API takes no language: the spoken language was detected rather than taken as 'de'"]);
    });

    it('reports en even when a compatible server names the spoken language in its translation', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      server.enqueue({ kind: 'respond', status: 200, body: { task: 'translate', language: 'german', duration: 11, text: 'Hello.', segments: [{ start: 0, end: 1, text: 'Hello.' }] } });
      expect((await run(engine, jfk, { task: 'translate' })).language).toBe('en');
    });

    it('an instance configured without translation refuses task=translate without calling the server', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url, { translation: false }));
      expect(engine.capabilities.translation).toBe(false);
      const before = server.requests.length;
      const err = await failure(run(engine, jfk, { task: 'translate' }));
      expect(err).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false });
      expect(server.requests.length).toBe(before);
    });
  });

  describe('errors', () => {
    const cases: [string, string, boolean, ServerBehaviour, Record<string, unknown>][] = [
      ['429 rate limit', 'ENGINE_OVERLOADED', true, { kind: 'rate_limit', retryAfter: '7' }, { http_status: 429, retry_after: '7', error_code: 'rate_limit_exceeded' }],
      ['500 server error', 'ENGINE_INTERNAL', true, { kind: 'server_error' }, { http_status: 500, error_code: 'internal_error', error_type: 'server_error' }],
      ['503 model not loaded', 'ENGINE_UNAVAILABLE', true, { kind: 'model_not_loaded' }, { http_status: 503, error_code: 'model_not_loaded', retry_after: '10' }],
      ['400 invalid request', 'ENGINE_REJECTED', false, { kind: 'invalid_request' }, { http_status: 400, error_code: 'invalid_audio', error_param: 'file', error_type: 'invalid_request_error' }],
      ['401 unauthorized', 'ENGINE_UNAUTHORIZED', false, { kind: 'unauthorized' }, { http_status: 401, error_code: 'invalid_api_key' }],
      ['403 forbidden', 'ENGINE_UNAUTHORIZED', false, { kind: 'respond', status: 403, body: { error: { message: 'region not supported', type: 'invalid_request_error', param: null, code: 'unsupported_country_region_territory' } } }, { http_status: 403 }],
      ['408 request timeout', 'ENGINE_TIMEOUT', true, { kind: 'respond', status: 408, body: { error: { message: 'Request timed out', type: 'server_error', param: null, code: null } } }, { http_status: 408 }],
      ['409 conflict', 'ENGINE_INTERNAL', true, { kind: 'respond', status: 409, body: { error: { message: 'conflict', type: 'server_error', param: null, code: null } } }, { http_status: 409 }],
      ['502 from a proxy (HTML)', 'ENGINE_UNAVAILABLE', true, { kind: 'respond', status: 502, body: '<html><body>Bad Gateway</body></html>', headers: { 'content-type': 'text/html' } }, { http_status: 502, body_excerpt: expect.stringContaining('Bad Gateway') }],
      ['413 too large', 'ENGINE_REJECTED', false, { kind: 'respond', status: 413, body: { error: { message: 'file is larger than the 1024 byte limit', type: 'invalid_request_error', param: 'file', code: 'file_too_large' } } }, { http_status: 413, error_code: 'file_too_large' }],
      ['malformed JSON', 'ENGINE_BAD_RESPONSE', true, { kind: 'malformed' }, { http_status: 200, reason: expect.stringMatching(/not JSON/) }],
      ['JSON of the wrong shape', 'ENGINE_BAD_RESPONSE', true, { kind: 'wrong_shape' }, { http_status: 200, reason: expect.stringMatching(/'text'/) }],
      ['segments without times', 'ENGINE_BAD_RESPONSE', true, { kind: 'respond', status: 200, body: { text: 'x', segments: [{ text: 'x' }] } }, { reason: expect.stringMatching(/segments\[0\]/) }],
      ['connection dropped', 'ENGINE_UNAVAILABLE', true, { kind: 'drop' }, {}],
    ];

    it.each(cases)('%s → %s (retryable: %s)', async (_name, code, retryable, behaviour, details) => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      server.enqueue(behaviour);
      const err = await failure(run(engine, jfk));
      expect(err).toMatchObject({ code, retryable, engineId: 'whisper-rocm' });
      expect(err.details).toMatchObject(details);
      // Clients see the code, the gateway's message, the engine and what it answered; never its address or body.
      expect(Object.keys(err.toJSON()).sort()).toEqual(['code', 'engine', 'message', ...(err.details.http_status === undefined ? [] : ['upstream_status'])]);
      expect(err.toJSON()).toMatchObject({ code, engine: 'whisper-rocm' });
      expect(JSON.stringify(err)).not.toContain(server.url.slice('http://'.length));
    });

    it('names the refused value of our own request, keeping the server\'s message private: a model the service has not loaded is rejected, not retried', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url, { model: 'large-v3' }));
      const err = await failure(run(engine, jfk));
      expect(err).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false, status: 502 });
      expect(err.details).toMatchObject({ http_status: 400, error_code: 'model_not_found', error_param: 'model', error_message: expect.stringMatching(/has loaded 'medium'/) });
      expect(err.message).toBe("whisper-rocm answered HTTP 400 (model_not_found) for model 'large-v3'");
      expect(err.toPublic()).toEqual({ code: 'ENGINE_REJECTED', message: err.message, engine: 'whisper-rocm', upstream_status: 400 });
    });

    it('keeps a server error text (a GPU message, a proxy page) out of the public message', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      server.enqueue({ kind: 'server_error' });
      const err = await failure(run(engine, jfk));
      expect(err.message).toBe('whisper-rocm answered HTTP 500 (internal_error)');
      expect(err.details.error_message).toMatch(/HIP out of memory/);
    });

    it('reports a missing audio file as a retryable ENGINE_INTERNAL without its path, sending nothing', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      const before = server.transcriptions().length;
      const gone = path.join(dir, 'gone.wav');
      const err = await failure(run(engine, { ...jfk, path: gone }));
      expect(err).toMatchObject({ code: 'ENGINE_INTERNAL', retryable: true, details: { path: gone } });
      expect(JSON.stringify(err)).not.toContain(gone);
      expect(server.transcriptions().length).toBe(before);
    });

    it('maps a wrong API key to ENGINE_UNAUTHORIZED (not retryable)', async () => {
      const keyed = await startOpenAiTranscriptionServer({ apiKey: 'right' });
      try {
        const err = await failure(run(new OpenAiCompatibleEngine(instance(keyed.url, { apiKey: 'wrong' })), jfk));
        expect(err).toMatchObject({ code: 'ENGINE_UNAUTHORIZED', retryable: false });
        expect(JSON.stringify(err.toJSON())).not.toContain('wrong');
      } finally {
        await keyed.close();
      }
    });

    it('maps a refused connection to ENGINE_UNAVAILABLE (retryable)', async () => {
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const { port } = closed.address() as AddressInfo;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const err = await failure(run(new OpenAiCompatibleEngine(instance(`http://127.0.0.1:${port}`)), jfk));
      expect(err).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true, message: 'whisper-rocm cannot be reached (ECONNREFUSED)' });
      expect(err.details).toMatchObject({ cause_code: 'ECONNREFUSED', url: `http://127.0.0.1:${port}/v1/audio/transcriptions` });
      expect(JSON.stringify(err)).not.toContain(String(port));
    });

    it('maps its own deadline to ENGINE_TIMEOUT (retryable) when the server is slower', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url, { timeoutMs: 300 }));
      server.enqueue({ kind: 'slow', delayMs: 20_000 });
      const err = await failure(run(engine, jfk));
      expect(err).toMatchObject({ code: 'ENGINE_TIMEOUT', retryable: true });
      expect(err.details).toMatchObject({ timeout_ms: 300 });
    });

    it('maps the caller aborting to ENGINE_CANCELLED (not retryable), before or during the request', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      const before = server.transcriptions().length;
      const aborted = new AbortController();
      aborted.abort();
      expect(await failure(run(engine, jfk, {}, aborted.signal))).toMatchObject({ code: 'ENGINE_CANCELLED', retryable: false });
      expect(server.transcriptions().length).toBe(before);

      server.enqueue({ kind: 'slow', delayMs: 20_000 });
      const controller = new AbortController();
      const pending = run(engine, jfk, {}, controller.signal);
      while (server.transcriptions().length === before) await new Promise((r) => setTimeout(r, 10));
      controller.abort();
      expect(await failure(pending)).toMatchObject({ code: 'ENGINE_CANCELLED', retryable: false });
    });

    it('refuses audio over the instance\'s upload cap without sending it', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url, { maxUploadBytes: 200_000 }));
      expect(engine.capabilities.max_duration_sec).toBe(5);
      const before = server.transcriptions().length;
      const err = await failure(run(engine, jfk));
      expect(err).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false });
      expect(server.transcriptions().length).toBe(before);
      const short = engineAudio(dir, fixture('jfk.wav'), ['-t', '3']);
      await expect(run(engine, short)).resolves.toMatchObject({ engine: { id: 'whisper-rocm' } });
    });
  });

  describe('health', () => {
    const signal = () => AbortSignal.timeout(5000);

    it('is available with the model and device the service reports, and unavailable while it loads', async () => {
      const engine = new OpenAiCompatibleEngine(instance(server.url));
      const up = await engine.health(signal());
      expect(up).toMatchObject({ available: true, details: { model: 'medium', device: 'cuda', status: 'ok' } });
      expect(up.message).toMatch(/medium.*cuda/);
      server.healthy = false;
      try {
        const down = await engine.health(signal());
        expect(down).toMatchObject({ available: false, details: { http_status: 503, status: 'loading' } });
        expect(down.message).toMatch(/503/);
      } finally {
        server.healthy = true;
      }
    });

    it('resolves unavailable, never throws, when nothing listens', async () => {
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const { port } = closed.address() as AddressInfo;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const engine = new OpenAiCompatibleEngine(instance(`http://127.0.0.1:${port}`));
      const health = await engine.health(signal());
      expect(health.available).toBe(false);
      expect(health.message).toBe('health probe failed: ECONNREFUSED');
      expect(health.internal).toMatchObject({ url: `http://127.0.0.1:${port}/health` });
      expect(JSON.stringify([health.message, health.details])).not.toContain(String(port));
    });

    it('probes GET /v1/models with the key when the server has no health endpoint (the OpenAI cloud)', async () => {
      const keyed = await startOpenAiTranscriptionServer({ apiKey: 'sk-ok' });
      try {
        const good = await new OpenAiCompatibleEngine(instance(keyed.url, { healthPath: null, apiKey: 'sk-ok' })).health(signal());
        expect(good).toMatchObject({ available: true, details: { model: 'whisper-1', model_listed: true } });
        const bad = await new OpenAiCompatibleEngine(instance(keyed.url, { healthPath: null, apiKey: 'sk-bad' })).health(signal());
        expect(bad).toMatchObject({ available: false, details: { http_status: 401 } });
        expect(bad.message).toMatch(/API key was refused/);
        expect(keyed.requests.filter((r) => r.path === '/v1/models').map((r) => r.authorization)).toEqual(['Bearer sk-ok', 'Bearer sk-bad']);
      } finally {
        await keyed.close();
      }
    });
  });

  describe('buildEngines', () => {
    const ids = (env: NodeJS.ProcessEnv) => buildEngines(env).engines.map((e) => e.id);

    it('leaves whisper-rocm and openai off by default', () => {
      expect(ids({})).not.toContain('whisper-rocm');
      expect(ids({})).not.toContain('openai');
    });

    it('registers whisper-rocm when WHISPER_ROCM_URL is set, or WHISPER_ROCM_ENABLED=true; WHISPER_ROCM_ENABLED=false wins', async () => {
      expect(ids({ WHISPER_ROCM_ENABLED: 'true' })).toContain('whisper-rocm');
      expect(ids({ WHISPER_ROCM_URL: server.url, WHISPER_ROCM_ENABLED: 'false' })).not.toContain('whisper-rocm');
      const { engines, problems } = buildEngines({ WHISPER_ROCM_URL: server.url, WHISPER_ROCM_CONCURRENCY: '3', WHISPER_ROCM_TIMEOUT: '30' });
      expect(problems).toEqual([]);
      const engine = engines.find((e) => e.id === 'whisper-rocm') as OpenAiCompatibleEngine;
      expect(engine).toBeInstanceOf(OpenAiCompatibleEngine);
      expect(engine.concurrency).toBe(3);
      expect(engine.capabilities).toMatchObject({
        diarization: false, word_boosting: false, word_timestamps: true, language_detection: true,
        models: ['whisper-1'], max_duration_sec: null, chunking_threshold_sec: 300, chunk_duration_sec: 120,
      });
      expect(engine.capabilities.languages).toEqual(expect.arrayContaining(['en', 'de', 'haw', 'yue']));
      expect(engine.capabilities.languages).toHaveLength(100);
      expect((await engine.health(AbortSignal.timeout(5000))).available).toBe(true);
      expect((await run(engine, jfk)).engine.id).toBe('whisper-rocm');
    });

    it('reports invalid whisper-rocm settings only when it is enabled', () => {
      const bad = { WHISPER_ROCM_URL: 'not a url', WHISPER_ROCM_TIMEOUT: 'soon' };
      expect(buildEngines(bad).problems.join('\n')).toMatch(/WHISPER_ROCM_URL[\s\S]*WHISPER_ROCM_TIMEOUT|WHISPER_ROCM_TIMEOUT[\s\S]*WHISPER_ROCM_URL/);
      expect(buildEngines({ ...bad, WHISPER_ROCM_ENABLED: 'false' }).problems).toEqual([]);
    });

    it('registers openai only with OPENAI_ENABLED=true and reports a missing OPENAI_API_KEY', () => {
      expect(ids({ OPENAI_API_KEY: 'sk-x' })).not.toContain('openai');
      const missing = buildEngines({ OPENAI_ENABLED: 'true' });
      expect(missing.problems).toContain('OPENAI_API_KEY is required when OPENAI_ENABLED=true');
    });

    it('builds the openai instance against a compatible server given as an SDK-style /v1 base URL', async () => {
      const keyed = await startOpenAiTranscriptionServer({ apiKey: 'sk-cloud' });
      try {
        const { engines, problems } = buildEngines({ OPENAI_ENABLED: 'true', OPENAI_API_KEY: 'sk-cloud', OPENAI_BASE_URL: `${keyed.url}/v1` });
        expect(problems).toEqual([]);
        const engine = engines.find((e) => e.id === 'openai') as OpenAiCompatibleEngine;
        // 25 MB cap (26 214 400 bytes) at 32 000 bytes per second of 16 kHz mono PCM.
        expect(engine.capabilities).toMatchObject({ models: ['whisper-1'], max_duration_sec: 818, chunking_threshold_sec: 300, chunk_duration_sec: 120 });
        expect(engine.concurrency).toBe(4);
        expect(await engine.health(AbortSignal.timeout(5000))).toMatchObject({ available: true, details: { model_listed: true } });
        const result = await run(engine, jfk, { language: 'en' });
        expect(result.engine).toEqual({ id: 'openai', model: 'whisper-1' });
        expect(keyed.transcriptions()[0]).toMatchObject({ authorization: 'Bearer sk-cloud', status: 200 });
      } finally {
        await keyed.close();
      }
    });
  });
});
