import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FIXTURES } from './env.js';

/**
 * A protocol-faithful whisper-asr-webservice test server (`ASR_ENGINE=whisperx`), a real
 * node:http server on 127.0.0.1:<ephemeral>. It speaks what engines/whisperx/README.md and
 * docs/ENGINES.md §2 describe: `POST /asr` with multipart `audio_file` and every option as a
 * query parameter, answered `text/plain` (JSON included) with `Asr-Engine: whisperx`; errors as
 * `{"detail": "..."}`; `GET /health` (the project's service only) and `GET /docs` (Swagger UI).
 *
 * It records what it receives (query, multipart field, file size, WAV header facts) and answers
 * realistic WhisperX JSON built by {@link whisperxJson}. Failures are scripted per `/asr` call.
 * `task` must be `transcribe` (the default) or `translate`, else 422 as FastAPI answers an enum
 * query parameter; with `translate` the text is English and `language` is still the spoken one
 * (the given `language`, else the detected one), as whisper-asr-webservice reports it.
 */

/** One scripted answer to `/asr`; `ok` is the default once the script is used up. */
export type AsrScript =
  | 'ok'
  /** 503 `{"detail": "...GPU ran out of memory..."}` (the service's retryable failure). */
  | 'unavailable'
  /** 500 `{"detail": ...}`. */
  | 'internal'
  /** 429. */
  | 'overloaded'
  /** 401. */
  | 'unauthorized'
  /** 400 `{"detail": ...}` (the service's non-retryable failure). */
  | 'bad_request'
  /** Answers after `slowMs` (beyond the client's timeout). */
  | 'slow'
  /** 200 with a body that is not JSON. */
  | 'malformed'
  /** 200 with JSON that is not a WhisperX result. */
  | 'wrong_shape'
  /** Drops the connection without an answer. */
  | 'reset';

export interface AsrServerOptions {
  /** `service`: the project's engines/whisperx (has `/health`, takes `model`). `stock`: whisper-asr-webservice (no `/health`). */
  flavour?: 'service' | 'stock';
  /** Scripted answers for the next `/asr` calls, in order. */
  script?: AsrScript[];
  /** Delay of a `slow` answer, ms. */
  slowMs?: number;
  /** `GET /health` answer of the service flavour. */
  health?: 'ok' | 'error';
  /** Label speakers even when the request has `diarize=false` (for clients that cannot ask for diarization yet). */
  alwaysDiarize?: boolean;
  /** Options for the JSON built for a successful answer. */
  json?: Omit<WhisperxJsonOptions, 'language' | 'diarize' | 'durationSec'>;
}

/** Format facts of an uploaded WAV; `durationSec` in seconds from the data chunk size. */
export interface WavFacts { sampleRate: number; channels: number; bitsPerSample: number; dataBytes: number; durationSec: number }

/** What the server saw of one `/asr` request. */
export interface AsrRequestRecord {
  query: Record<string, string>;
  contentType: string | undefined;
  contentLength: number | undefined;
  transferEncoding: string | undefined;
  /** Names of every multipart field. */
  fields: string[];
  file: {
    field: string;
    filename: string;
    type: string;
    size: number;
    /** From the WAV header, or null when the upload is not a RIFF/WAVE file. */
    wav: WavFacts | null;
  } | null;
  /** What the server did. */
  answered: AsrScript;
}

export interface AsrWebserviceServer {
  url: string;
  /** Every `/asr` request in order of arrival. */
  requests: AsrRequestRecord[];
  /** Paths of every GET request (`/health`, `/docs`). */
  gets: string[];
  /** Appends scripted answers. */
  enqueue(...script: AsrScript[]): void;
  close(): Promise<void>;
}

/** WAV header facts (RIFF chunks walked properly, not fixed offsets). */
export function parseWavHeader(bytes: Buffer): WavFacts | null {
  if (bytes.length < 12 || bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') return null;
  let offset = 12;
  let fmt: { sampleRate: number; channels: number; bitsPerSample: number } | null = null;
  while (offset + 8 <= bytes.length) {
    const id = bytes.toString('ascii', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ' && body + 16 <= bytes.length) {
      fmt = { channels: bytes.readUInt16LE(body + 2), sampleRate: bytes.readUInt32LE(body + 4), bitsPerSample: bytes.readUInt16LE(body + 14) };
    } else if (id === 'data' && fmt) {
      // ffmpeg writes the real size; a streaming writer may leave 0xFFFFFFFF: use what arrived.
      const dataBytes = Math.min(size, bytes.length - body);
      const bytesPerSec = fmt.sampleRate * fmt.channels * (fmt.bitsPerSample / 8);
      return { ...fmt, dataBytes, durationSec: bytesPerSec > 0 ? dataBytes / bytesPerSec : 0 };
    }
    offset = body + size + (size % 2);
  }
  return null;
}

interface Turn { start: number; end: number; speaker: string }

/** Speaker turns of the dialogue fixture's RTTM, speakers renamed SPEAKER_00… in order of appearance (as pyannote output would be after WhisperX). */
function fixtureTurns(): Turn[] {
  const names = new Map<string, string>();
  return readFileSync(path.join(FIXTURES, 'tts', 'dialogue_2spk.rttm'), 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[0] === 'SPEAKER')
    .map((f) => {
      if (!names.has(f[7])) names.set(f[7], `SPEAKER_${String(names.size).padStart(2, '0')}`);
      const start = Number(f[3]);
      return { start, end: start + Number(f[4]), speaker: names.get(f[7])! };
    });
}

/** The Harvard sentences of the dialogue fixture, two with tokens WhisperX's aligner cannot place (as Whisper writes them: digits, `%`). */
function fixtureLines(): string[] {
  const lines = readFileSync(path.join(FIXTURES, 'tts', 'harvard.txt'), 'utf8').split('\n').filter((l) => l.trim() !== '');
  lines[6] = `${lines[6].replace(/\.$/, '')} in 1984.`;
  lines[9] = 'A large size in stockings is 100% hard to sell.';
  return lines;
}

export interface WhisperxJsonOptions {
  /** Seconds of audio received: turns after it are dropped, the last one cut. */
  durationSec: number;
  /** Given language (echoed), or null for auto-detection (answers `detectedLanguage`). */
  language: string | null;
  diarize: boolean;
  /** Default `en`. */
  detectedLanguage?: string;
  /** Speaker label per turn index (0-based), overriding the fixture's (e.g. a third speaker). */
  relabel?: (turn: number, label: string) => string;
  /** Lines spoken per turn, overriding the fixture's Harvard sentences. */
  lines?: string[];
}

/**
 * The JSON WhisperX 3.3.1 (behind whisper-asr-webservice) returns for the dialogue fixture
 * (tts/dialogue_2spk.wav, 32 s, two alternating speakers): one segment per speech turn, words
 * aligned evenly inside it with scores, tokens without letters (`1984.`, `100%`) left without
 * start/end/score/speaker as wav2vec2 alignment leaves them, segment times from the first/last
 * aligned word; with `diarize`, `speaker` on segments and aligned words by largest overlap.
 */
export function whisperxJson(options: WhisperxJsonOptions): Record<string, unknown> {
  const turns = fixtureTurns();
  const lines = options.lines ?? fixtureLines();
  const segments = turns
    .map((turn, i) => ({ ...turn, speaker: options.relabel ? options.relabel(i, turn.speaker) : turn.speaker, text: ` ${lines[i % lines.length]}` }))
    .filter((t) => t.start < options.durationSec)
    .map((t) => {
      const end = Math.min(t.end, options.durationSec);
      const tokens = t.text.trim().split(/\s+/);
      const slot = (end - t.start) / tokens.length;
      const words = tokens.map((token, i) => {
        if (!/[A-Za-z']/.test(token)) return { word: token };
        const start = t.start + i * slot;
        return {
          word: token,
          start: Math.round(start * 1000) / 1000,
          end: Math.round((start + 0.8 * slot) * 1000) / 1000,
          score: Math.round((0.6 + 0.03 * (i % 10)) * 1000) / 1000,
          ...(options.diarize ? { speaker: t.speaker } : {}),
        };
      });
      const timed = words.filter((w): w is typeof w & { start: number; end: number } => 'start' in w);
      return {
        start: timed[0]?.start ?? t.start,
        end: timed[timed.length - 1]?.end ?? end,
        text: t.text,
        words,
        ...(options.diarize ? { speaker: t.speaker } : {}),
      };
    });
  return { segments, language: options.language ?? options.detectedLanguage ?? 'en' };
}

const ALLOWED_MODELS = ['tiny', 'base', 'small', 'medium', 'large-v2', 'large-v3'];

/** Starts the server; close it in `afterAll`. */
export async function startAsrWebserviceServer(options: AsrServerOptions = {}): Promise<AsrWebserviceServer> {
  const flavour = options.flavour ?? 'service';
  const script = [...(options.script ?? [])];
  const requests: AsrRequestRecord[] = [];
  const gets: string[] = [];

  const send = (res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8', headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': type, 'Asr-Engine': 'whisperx', ...headers });
    res.end(body);
  };
  const detail = (res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}) =>
    send(res, status, JSON.stringify({ detail: text }), 'application/json', headers);

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET') {
      gets.push(url.pathname);
      if (url.pathname === '/docs') return send(res, 200, '<!DOCTYPE html><html><head><title>Whisper Asr Webservice - Swagger UI</title></head><body></body></html>', 'text/html; charset=utf-8');
      if (url.pathname === '/health' && flavour === 'service') {
        if (options.health === 'error') return detail(res, 503, 'the service is shutting down');
        return send(res, 200, JSON.stringify({
          status: 'ok', device: 'cuda', compute_type: 'float16', default_model: 'base', allowed_models: ALLOWED_MODELS,
          loaded_models: ['large-v3'], loaded_align_models: ['en'], diarization_available: true, diarization_loaded: true,
        }), 'application/json');
      }
      return detail(res, 404, 'Not Found');
    }
    if (req.method !== 'POST' || url.pathname !== '/asr') return detail(res, 404, 'Not Found');
    void handleAsr(req, res, url).catch((err: unknown) => {
      if (!res.headersSent) detail(res, 500, String(err));
    });
  });

  async function handleAsr(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const answer = script.shift() ?? 'ok';
    const record: AsrRequestRecord = {
      query: Object.fromEntries(url.searchParams),
      contentType: req.headers['content-type'],
      contentLength: req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']),
      transferEncoding: req.headers['transfer-encoding'],
      fields: [],
      file: null,
      answered: answer,
    };
    requests.push(record);
    let form: FormData;
    try {
      const webRequest = new Request(`http://127.0.0.1${req.url}`, {
        method: 'POST',
        headers: req.headers as Record<string, string>,
        body: Readable.toWeb(req) as ReadableStream<Uint8Array>,
        duplex: 'half',
      });
      form = await webRequest.formData();
    } catch (err) {
      return detail(res, 422, `malformed multipart body: ${String(err)}`);
    }
    record.fields = [...form.keys()];
    const upload = form.get('audio_file');
    if (upload === null) return detail(res, 400, "the multipart field 'audio_file' is required");
    if (typeof upload === 'string') return detail(res, 422, "'audio_file' must be a file, not a text field");
    const bytes = Buffer.from(await upload.arrayBuffer());
    record.file = { field: 'audio_file', filename: upload.name, type: upload.type, size: bytes.length, wav: parseWavHeader(bytes) };
    if (bytes.length === 0) return detail(res, 400, 'the uploaded audio is empty');

    const q = url.searchParams;
    const task = q.get('task') ?? 'transcribe';
    if (task !== 'transcribe' && task !== 'translate') {
      return send(res, 422, JSON.stringify({ detail: [{ loc: ['query', 'task'], msg: "value is not a valid enumeration member; permitted: 'transcribe', 'translate'", type: 'type_error.enum' }] }), 'application/json');
    }
    if (flavour === 'service' && q.has('model') && !ALLOWED_MODELS.includes(q.get('model')!)) {
      return detail(res, 400, `unknown model '${q.get('model')}'; allowed: ${ALLOWED_MODELS.join(', ')}`);
    }
    switch (answer) {
      case 'unavailable':
        return detail(res, 503, 'CUDA out of memory while loading model large-v3; retry later', { 'Retry-After': '2' });
      case 'internal':
        return detail(res, 500, 'Internal Server Error');
      case 'overloaded':
        return detail(res, 429, 'too many requests');
      case 'unauthorized':
        return detail(res, 401, 'Not authenticated');
      case 'bad_request':
        return detail(res, 400, 'the audio could not be decoded: Invalid data found when processing input');
      case 'reset':
        req.socket.destroy();
        return;
      case 'malformed':
        return send(res, 200, '{"language": "en", "segments": [{"start": 0.0, "end"');
      case 'wrong_shape':
        return send(res, 200, JSON.stringify({ text: 'a plain transcript', language: 'en' }));
      case 'slow':
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.slowMs ?? 5000);
          res.on('close', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        if (res.destroyed || res.writableEnded) return;
        break;
      case 'ok':
        break;
    }
    const wav = record.file.wav;
    const durationSec = wav ? wav.durationSec : 0;
    const diarize = options.alwaysDiarize === true || ['true', '1', 'yes', 'on'].includes((q.get('diarize') ?? '').toLowerCase());
    const json = whisperxJson({ ...options.json, durationSec, language: q.get('language') || null, diarize });
    if (q.get('output') !== 'json') return send(res, 200, (json.segments as { text: string }[]).map((s) => s.text.trim()).join('\n'));
    send(res, 200, JSON.stringify(json), 'text/plain; charset=utf-8', { 'Content-Disposition': `attachment; filename="${path.parse(record.file.filename).name}.json"` });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    gets,
    enqueue: (...more) => script.push(...more),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
