import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { nonZeroStretches } from './echo-engine.js';

/**
 * A real HTTP server on 127.0.0.1 that speaks the OpenAI transcription API the way the project's
 * whisper-rocm service does (engines/whisper-rocm/README.md): `POST /v1/audio/transcriptions`
 * and `POST /v1/audio/translations` (multipart), `GET /health`, `GET /v1/models`, OpenAI error
 * bodies. Translations take OpenAI's translation fields only (`file`, `model`, `prompt`,
 * `response_format`, `temperature`): a `language` or `timestamp_granularities[]` field is
 * answered 400 `unknown_parameter`, and `verbose_json` is `{task: "translate", language:
 * "english", duration, text, segments}` without words. It validates the fields as
 * the service does, records every request, and answers with a recorded-looking Whisper result
 * (the JFK inaugural sentence, times scaled to the uploaded audio's length). Each transcription
 * request can be scripted to fail in a chosen way.
 *
 * Only WAV uploads are understood (the gateway sends nothing else); any other file is answered
 * 400 invalid_audio, where the real service would decode it with ffmpeg.
 */

/** What the next transcription or translation request gets. Default (queue empty): `ok`. */
export type ServerBehaviour =
  | { kind: 'ok' }
  /** 429 with `Retry-After`. */
  | { kind: 'rate_limit'; retryAfter?: string }
  /** 500 internal_error (e.g. GPU out of memory). */
  | { kind: 'server_error' }
  /** 503 model_not_loaded with `Retry-After: 10`. */
  | { kind: 'model_not_loaded' }
  /** 400 invalid_request_error. */
  | { kind: 'invalid_request'; code?: string; message?: string; param?: string }
  /** 401 invalid_api_key, whatever the key. */
  | { kind: 'unauthorized' }
  /** Waits `delayMs` before answering normally (longer than the adapter's timeout to provoke one). */
  | { kind: 'slow'; delayMs: number }
  /** 200 with a JSON body cut in the middle. */
  | { kind: 'malformed' }
  /** 200 with valid JSON that is not verbose_json. */
  | { kind: 'wrong_shape' }
  /** Closes the connection without answering. */
  | { kind: 'drop' }
  /** Any status and JSON body (for mapping edge cases). */
  | { kind: 'respond'; status: number; body: unknown; headers?: Record<string, string> };

/** Format of an uploaded WAV, from its RIFF header. */
export interface WavInfo {
  /** Hz. */
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  /** Seconds of samples in the data chunk. */
  durationSec: number;
}

/** What a recorded request carried. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** The `Authorization` header as received, or null. */
  authorization: string | null;
  contentType: string | null;
  /** The `Content-Length` header as a number, or null (a chunked body). */
  contentLength: number | null;
  /** The `Transfer-Encoding` header, or null (a body of declared length). */
  transferEncoding: string | null;
  /** Text fields of the multipart body, each name with every value in order. */
  fields: Record<string, string[]>;
  /** The `file` part, or null when absent. */
  file: {
    filename: string;
    type: string;
    /** Bytes. */
    size: number;
    /** From the RIFF header; null when the file is not a WAV. */
    wav: WavInfo | null;
  } | null;
  /** The behaviour that answered it (transcription and translation requests only). */
  behaviour?: ServerBehaviour['kind'];
  /** performance.now() (ms) when the request arrived, and when its answer was sent. */
  receivedAt: number;
  answeredAt?: number;
  /** HTTP status sent (undefined when the connection was dropped or the client left first). */
  status?: number;
  /** Epoch ms the request arrived, its simulated inference began and ended (transcriptions with `delayMsPerAudioSec` only for the last two). */
  arrivedAt?: number;
  startedAt?: number;
  endedAt?: number;
}

export interface OpenAiTranscriptionServer {
  /** `http://127.0.0.1:<port>` (no trailing slash, no `/v1`). */
  url: string;
  requests: RecordedRequest[];
  /** Transcription requests only. */
  transcriptions(): RecordedRequest[];
  /** Translation requests only (`POST /v1/audio/translations`). */
  translations(): RecordedRequest[];
  /** Queues behaviours for the next transcription requests, one each, in order. */
  enqueue(...behaviours: ServerBehaviour[]): void;
  /** `GET /health` answers 200 when true (model loaded), 503 `loading` when false. */
  healthy: boolean;
  /** Holds simulated inference: transcriptions wait (in arrival order, when serial) until release(). */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

export interface ServerOptions {
  /** When set, transcriptions and `/v1/models` require `Authorization: Bearer <apiKey>`, as the service's API_KEY. */
  apiKey?: string;
  /** The loaded model's name (the service accepts it, `whisper-<name>` and `whisper-1`). */
  loadedModel?: string;
  /**
   * Simulated real-time factor of the model (a GPU replica per concurrent request): a successful
   * transcription is answered after `audio seconds × realTimeFactor` seconds, so engine time is
   * proportional to the audio received, as on a real Whisper server. Default 0 (answer at once).
   */
  realTimeFactor?: number;
  /**
   * What the words of a successful answer are: `fixture` (default) the recorded JFK result with its
   * times scaled to the audio's length; `audio` one word per stretch of non-zero samples of the
   * received WAV (runs of ≥ 0.2 s of exact zeros separate them), at that stretch's exact times in
   * the received audio — words that land where the audio really is, for time-mapping checks and
   * benchmarks on long recordings.
   */
  words?: 'fixture' | 'audio';
  /**
   * Simulated inference time, ms per second of uploaded audio (default 0): a deterministic stand-in
   * for a GPU's speed in scheduling tests.
   */
  delayMsPerAudioSec?: number;
  /** Transcribe one request at a time, in arrival order, as one service replica with one model does (default false). */
  serial?: boolean;
}

/** Whisper's language table, read from the project's own service so the server and the adapter do not share code. */
const LANGUAGES: Record<string, string> = Object.fromEntries(
  [...readFileSync(path.resolve('engines/whisper-rocm/whisper_rocm_service/languages.py'), 'utf8').matchAll(/^\s+"([a-z]{2,3})": "([a-z ]+)",$/gm)].map((m) => [m[1], m[2]]),
);

/** The fixture's own length, seconds (jfk.wav). */
const FIXTURE_DURATION = 11.0;
type FixtureWord = [string, number, number];
/**
 * openai-whisper `medium` on jfk.wav, word_timestamps=True: words carry Whisper's punctuation,
 * times are 20 ms DTW frames rounded to 2 decimals; segment bounds follow the first/last word.
 */
const FIXTURE_SEGMENTS: { text: string; tokens: number[]; avg_logprob: number; compression_ratio: number; no_speech_prob: number; words: FixtureWord[] }[] = [
  {
    text: ' And so my fellow Americans, ask not what your country can do for you,',
    tokens: [50364, 400, 370, 452, 7177, 6280, 11, 1029, 406, 437, 428, 1941, 393, 360, 337, 291, 11, 50748],
    avg_logprob: -0.1802,
    compression_ratio: 1.2556,
    no_speech_prob: 0.0113,
    words: [
      ['And', 0.06, 0.38], ['so', 0.38, 0.7], ['my', 0.7, 0.98], ['fellow', 0.98, 1.3], ['Americans,', 1.3, 2.3],
      ['ask', 3.28, 3.72], ['not', 3.98, 4.3], ['what', 5.34, 5.6], ['your', 5.6, 5.86], ['country', 5.86, 6.42],
      ['can', 6.42, 6.66], ['do', 6.66, 6.88], ['for', 6.88, 7.06], ['you,', 7.06, 7.68],
    ],
  },
  {
    text: ' ask what you can do for your country.',
    tokens: [50764, 1029, 437, 291, 393, 360, 337, 428, 1941, 13, 50914],
    avg_logprob: -0.2231,
    compression_ratio: 1.1875,
    no_speech_prob: 0.0113,
    words: [
      ['ask', 8.16, 8.54], ['what', 8.54, 8.8], ['you', 8.8, 9.18], ['can', 9.2, 9.42], ['do', 9.42, 9.7],
      ['for', 9.74, 9.84], ['your', 9.84, 10.08], ['country.', 10.08, 10.46],
    ],
  },
];

/** Reads sample rate, channels and duration from a RIFF/WAVE header; null when it is not one. */
export function wavInfo(bytes: Uint8Array): WavInfo | null {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') return null;
  let offset = 12;
  let fmt: { sampleRate: number; channels: number; bitsPerSample: number; byteRate: number } | null = null;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      fmt = { channels: buf.readUInt16LE(body + 2), sampleRate: buf.readUInt32LE(body + 4), byteRate: buf.readUInt32LE(body + 8), bitsPerSample: buf.readUInt16LE(body + 14) };
    } else if (id === 'data' && fmt) {
      const dataBytes = Math.min(size, buf.length - body);
      return { sampleRate: fmt.sampleRate, channels: fmt.channels, bitsPerSample: fmt.bitsPerSample, durationSec: dataBytes / fmt.byteRate };
    }
    offset = body + size + (size % 2);
  }
  return null;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * verbose_json with one segment per word at the given times (seconds in the received audio), as
 * whisper-rocm renders it (formats.to_verbose_json).
 */
function verboseJsonFromWords(duration: number, language: string | null, granularities: string[], words: { word: string; start: number; end: number }[], task: 'transcribe' | 'translate' = 'transcribe'): Record<string, unknown> {
  const wanted = granularities.length ? granularities : ['segment'];
  const body: Record<string, unknown> = {
    task,
    language: task === 'translate' ? 'english' : (LANGUAGES[language ?? 'en'] ?? 'english'),
    duration,
    text: words.map((w) => w.word).join(' '),
  };
  if (wanted.includes('segment')) {
    body.segments = words.map((w, id) => ({
      id, seek: 0, start: w.start, end: w.end, text: ` ${w.word}`, tokens: [], temperature: 0.0, avg_logprob: -0.2, compression_ratio: 1.0, no_speech_prob: 0.01,
    }));
  }
  if (wanted.includes('word')) body.words = words;
  return body;
}

/** Words at the stretches of non-zero samples of a 16-bit PCM WAV (`words: 'audio'`), seconds to 3 decimals. */
function audioWords(bytes: Uint8Array): { word: string; start: number; end: number }[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 12;
  let sampleRate = 16000;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    if (id === 'fmt ') sampleRate = buf.readUInt32LE(offset + 12);
    if (id === 'data') {
      const data = buf.subarray(offset + 8, Math.min(buf.length, offset + 8 + size));
      const samples = new Int16Array(Math.floor(data.length / 2));
      new Uint8Array(samples.buffer).set(data.subarray(0, samples.length * 2));
      const round3 = (x: number) => Math.round(x * 1000) / 1000;
      return nonZeroStretches(samples, sampleRate).map((st, i) => ({ word: `w${i}`, start: round3(st.start), end: round3(st.end) }));
    }
    offset += 8 + size + (size % 2);
  }
  return [];
}

/** verbose_json for audio of `duration` seconds, as whisper-rocm renders it (formats.to_verbose_json). */
function verboseJson(duration: number, language: string | null, granularities: string[], task: 'transcribe' | 'translate' = 'transcribe'): Record<string, unknown> {
  const scale = duration / FIXTURE_DURATION;
  const wanted = granularities.length ? granularities : ['segment'];
  const segments = FIXTURE_SEGMENTS.map((s, id) => ({
    id,
    seek: 0,
    start: round2(s.words[0][1] * scale),
    end: round2(s.words[s.words.length - 1][2] * scale),
    text: s.text,
    tokens: s.tokens,
    temperature: 0.0,
    avg_logprob: s.avg_logprob,
    compression_ratio: s.compression_ratio,
    no_speech_prob: s.no_speech_prob,
  }));
  const body: Record<string, unknown> = {
    task,
    // A translation's language is the output's: always english (OpenAI's TranslationVerbose).
    language: task === 'translate' ? 'english' : (LANGUAGES[language ?? 'en'] ?? 'english'),
    duration,
    text: FIXTURE_SEGMENTS.map((s) => s.text).join('').trim(),
  };
  if (wanted.includes('segment')) body.segments = segments;
  if (wanted.includes('word')) {
    body.words = FIXTURE_SEGMENTS.flatMap((s) => s.words.map(([word, start, end]) => ({ word, start: round2(start * scale), end: round2(end * scale) })));
  }
  return body;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body() {
    return { error: { message: this.message, type: this.status >= 500 ? 'server_error' : 'invalid_request_error', param: this.param, code: this.code } };
  }
}

function send(res: ServerResponse, record: RecordedRequest, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  record.status = status;
  record.answeredAt = performance.now();
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

/** Starts the server on 127.0.0.1 and an ephemeral port. */
export async function startOpenAiTranscriptionServer(options: ServerOptions = {}): Promise<OpenAiTranscriptionServer> {
  const loadedModel = options.loadedModel ?? 'medium';
  const acceptedModels = new Set(['whisper-1', loadedModel, `whisper-${loadedModel}`]);
  const queue: ServerBehaviour[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const requests: RecordedRequest[] = [];

  const pause = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(() => { timers.delete(timer); resolve(); }, ms);
    timers.add(timer);
  });

  const authorized = (header: string | null) => !options.apiKey || header === `Bearer ${options.apiKey}`;
  /** The tail of the serial inference line (options.serial). */
  let line: Promise<void> = Promise.resolve();
  /** Inference waits for this (hold/release). */
  let gate: Promise<void> = Promise.resolve();
  let openGate: () => void = () => undefined;
  /** Simulated inference of `durationSec` of audio: waits delayMsPerAudioSec per second, alone when serial. */
  const infer = (record: RecordedRequest, durationSec: number): Promise<void> => {
    const run = async () => {
      await gate;
      record.startedAt = Date.now();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { timers.delete(timer); resolve(); }, (options.delayMsPerAudioSec ?? 0) * durationSec);
        timers.add(timer);
      });
      record.endedAt = Date.now();
    };
    if (!options.serial) return run();
    const turn = line.then(run);
    line = turn.catch(() => undefined);
    return turn;
  };

  async function transcription(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, task: 'transcribe' | 'translate' = 'transcribe'): Promise<void> {
    let form: FormData;
    try {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
      form = await new Request(`http://127.0.0.1${req.url}`, { method: 'POST', headers, body: Readable.toWeb(req) as ReadableStream, duplex: 'half' }).formData();
    } catch (err) {
      throw new ApiError(400, `malformed multipart body: ${(err as Error).message}`, 'invalid_multipart');
    }
    for (const [name, value] of form.entries()) {
      if (typeof value === 'string') (record.fields[name] ??= []).push(value);
    }
    const file = form.get('file');
    let bytes = new Uint8Array(0);
    if (file !== null && typeof file !== 'string') {
      bytes = new Uint8Array(await file.arrayBuffer());
      record.file = { filename: file.name, type: file.type, size: bytes.byteLength, wav: wavInfo(bytes) };
    }

    const behaviour = queue.shift() ?? { kind: 'ok' };
    record.behaviour = behaviour.kind;
    switch (behaviour.kind) {
      case 'rate_limit':
        throw new ApiError(429, 'Rate limit reached for requests', 'rate_limit_exceeded', null, { 'retry-after': behaviour.retryAfter ?? '7' });
      case 'server_error':
        throw new ApiError(500, 'transcription failed: HIP out of memory. Tried to allocate 1.50 GiB', 'internal_error');
      case 'model_not_loaded':
        throw new ApiError(503, `model ${loadedModel} is still loading`, 'model_not_loaded', null, { 'retry-after': '10' });
      case 'invalid_request':
        throw new ApiError(400, behaviour.message ?? 'the audio could not be decoded', behaviour.code ?? 'invalid_audio', behaviour.param ?? 'file');
      case 'unauthorized':
        throw new ApiError(401, "invalid or missing API key: send 'Authorization: Bearer <key>'", 'invalid_api_key', null, { 'www-authenticate': 'Bearer' });
      case 'malformed':
        return send(res, record, 200, '{"task": "transcribe", "language": "english", "duration": 11.0, "text": "And so my fel');
      case 'wrong_shape':
        return send(res, record, 200, { results: [{ alternatives: [{ transcript: 'and so my fellow americans' }] }] });
      case 'drop':
        req.socket.destroy();
        return;
      case 'respond':
        return send(res, record, behaviour.status, behaviour.body, behaviour.headers);
      case 'slow':
        await pause(behaviour.delayMs);
        break;
      case 'ok':
        break;
    }

    // Validation in the service's order (main.parse_transcription_form).
    if (!authorized(record.authorization)) {
      throw new ApiError(401, "invalid or missing API key: send 'Authorization: Bearer <key>'", 'invalid_api_key', null, { 'www-authenticate': 'Bearer' });
    }
    if (file === null) throw new ApiError(400, "'file' is required", 'missing_file', 'file');
    if (typeof file === 'string') throw new ApiError(400, "'file' must be a file upload, not a text field", 'invalid_file', 'file');
    if (task === 'translate') {
      // OpenAI's translations have neither field: an adapter sending one would be relying on a server extension.
      for (const name of ['language', 'timestamp_granularities[]', 'timestamp_granularities']) {
        if (record.fields[name]) throw new ApiError(400, `Unrecognized request argument supplied: ${name}`, 'unknown_parameter', name);
      }
    }
    const model = record.fields.model?.[0]?.trim();
    if (model && !acceptedModels.has(model)) throw new ApiError(400, `model '${model}' is not served here; this server has loaded '${loadedModel}'`, 'model_not_found', 'model');
    const language = record.fields.language?.[0]?.trim().toLowerCase() || null;
    if (language && !(language in LANGUAGES)) throw new ApiError(400, `language '${language}' is not a supported ISO-639-1 code`, 'unsupported_language', 'language');
    const format = (record.fields.response_format?.[0] ?? 'json').trim().toLowerCase();
    if (!['json', 'text', 'verbose_json'].includes(format)) throw new ApiError(400, `response_format '${format}' is not served by this test server`, 'invalid_value', 'response_format');
    const granularities = [...(record.fields['timestamp_granularities[]'] ?? []), ...(record.fields.timestamp_granularities ?? [])].map((g) => g.trim().toLowerCase());
    for (const g of granularities) {
      if (g !== 'segment' && g !== 'word') throw new ApiError(400, `timestamp_granularities[] values must be segment or word, got '${g}'`, 'invalid_value', 'timestamp_granularities[]');
    }
    if (record.file!.size === 0) throw new ApiError(400, 'the uploaded file is empty', 'empty_file', 'file');
    const wav = record.file!.wav;
    if (!wav || wav.durationSec <= 0) throw new ApiError(400, 'the audio could not be decoded (this test server reads WAV only)', 'invalid_audio', 'file');

    const duration = Math.round(wav.durationSec * 1000) / 1000;
    const wantedGranularities = [...new Set(granularities)];
    const result = options.words === 'audio'
      ? verboseJsonFromWords(duration, language, wantedGranularities, audioWords(bytes), task)
      : verboseJson(duration, language, wantedGranularities, task);
    if (options.realTimeFactor) await pause(wav.durationSec * options.realTimeFactor * 1000);
    if (options.delayMsPerAudioSec || options.serial) await infer(record, wav.durationSec);
    if (format === 'text') {
      record.status = 200;
      record.answeredAt = performance.now();
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${result.text as string}\n`);
      return;
    }
    send(res, record, 200, format === 'json' ? { text: result.text } : result, { 'x-audio-duration-seconds': String(duration) });
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      authorization: req.headers.authorization ?? null,
      contentType: req.headers['content-type'] ?? null,
      contentLength: req.headers['content-length'] === undefined ? null : Number(req.headers['content-length']),
      transferEncoding: req.headers['transfer-encoding'] ?? null,
      fields: {},
      file: null,
      arrivedAt: Date.now(),
      receivedAt: performance.now(),
    };
    requests.push(record);
    const fail = (err: unknown) => {
      if (err instanceof ApiError) return send(res, record, err.status, err.body(), err.headers);
      send(res, record, 500, new ApiError(500, (err as Error).message, 'internal_error').body());
    };

    if (req.method === 'GET' && url.pathname === '/health') {
      req.resume();
      return api.healthy
        ? send(res, record, 200, { status: 'ok', model: loadedModel, device: 'cuda', device_name: 'AMD Radeon PRO W7900', fp16: true, hip_version: '6.2.41134-65d174c3e', torch_version: '2.3.0+rocm6.2.3', load_seconds: 9.8 })
        : send(res, record, 503, { status: 'loading', model: loadedModel });
    }
    if (req.method === 'GET' && url.pathname === '/v1/models') {
      req.resume();
      if (!authorized(record.authorization)) return fail(new ApiError(401, 'Incorrect API key provided', 'invalid_api_key'));
      return send(res, record, 200, { object: 'list', data: [{ id: 'whisper-1', object: 'model', created: 1677610602, owned_by: 'openai-internal' }] });
    }
    if (req.method === 'POST' && url.pathname === '/v1/audio/transcriptions') {
      transcription(req, res, record).catch(fail);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/v1/audio/translations') {
      transcription(req, res, record, 'translate').catch(fail);
      return;
    }
    req.resume();
    fail(new ApiError(404, `no route for ${req.method} ${url.pathname}`, 'not_found'));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const api: OpenAiTranscriptionServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    transcriptions: () => requests.filter((r) => r.path === '/v1/audio/transcriptions'),
    translations: () => requests.filter((r) => r.path === '/v1/audio/translations'),
    enqueue: (...behaviours) => queue.push(...behaviours),
    healthy: true,
    hold: () => {
      gate = new Promise<void>((resolve) => { openGate = resolve; });
    },
    release: () => openGate(),
    close: async () => {
      openGate();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}
