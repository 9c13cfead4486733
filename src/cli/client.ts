import { constants, openAsBlob } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { SseDecoder } from './sse.js';

/**
 * A small client of the gateway's job API (`/api/transcribe/jobs`) for the CLI: the one class
 * of the CLI that talks HTTP. It maps every failure to one of three errors so the CLI can pick an
 * exit code: ApiError (the gateway answered with an error status), ConnectionError (no answer),
 * JobFailedError (the job ran and failed).
 */

/** Job status (`GET /status/:job_id` and every SSE event of `GET /stream/:job_id`). */
export interface JobStatusEvent {
  job_id: string;
  /** `cancelled`: ended by DELETE while queued or running (error code JOB_CANCELLED). */
  status: 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled';
  /** 0..100. */
  progress: number;
  stage: string;
  engine: string;
  message: string;
  chunks_done?: number;
  chunks_total?: number;
  /** `duration` in seconds. */
  result?: { segments_count: number; duration: number };
  /** The last error once failed or cancelled (code, message, retryable, attempt). */
  error?: { code?: string; message?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** One engine of `GET /engines` (availability from the gateway's cached probes, plus capabilities). */
export interface EngineInfo {
  engine: string;
  display_name: string;
  available: boolean;
  message: string | null;
  diarization: boolean;
  word_timestamps?: boolean;
  language_detection?: boolean;
  languages: string[];
  models: string[];
  [key: string]: unknown;
}

export interface EnginesResponse {
  engines: Record<string, EngineInfo>;
  default_engine: string;
}

/** 202 answer of a submission. */
export interface SubmitResponse {
  job_id: string;
  transcript_id: string;
  engine: string;
  status: 'queued';
  message: string;
}

/** Transcript formats `GET /result/:job_id?format=` serves. */
export const RESULT_FORMATS = ['json', 'txt', 'srt', 'vtt'] as const;
export type ResultFormat = (typeof RESULT_FORMATS)[number];

/** A submission: a local file (uploaded as multipart `file`) or a URL the gateway downloads (`audio_url`), plus form fields. */
export interface SubmitRequest {
  source: { file: string } | { audioUrl: string };
  /** Multipart fields as the API names them (`engine`, `language`, `enable_diarization`…), already strings. */
  fields: Record<string, string>;
}

/** The gateway answered with a non-2xx status. `message` is the API's own `message` (arrays joined with `; `). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** The API's machine-readable `code` (JOB_NOT_FOUND, VALIDATION_FAILED…), when the body had one. */
    readonly code: string | null,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** No HTTP answer: refused, unknown host, reset, or an event stream that kept dropping. */
export class ConnectionError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot connect to ${url} (${reason})`);
    this.name = 'ConnectionError';
  }
}

/** The job reached `failed` or `cancelled`. `message` is the job's error message. */
export class JobFailedError extends Error {
  constructor(
    readonly jobId: string,
    readonly last: JobStatusEvent,
  ) {
    const error = last.error;
    super(`job ${jobId} ${last.status === 'cancelled' ? 'was cancelled' : 'failed'}: ${error?.message ?? last.message}${error?.code ? ` (${error.code})` : ''}`);
    this.name = 'JobFailedError';
  }
}

/** The file to upload cannot be read (missing, a directory, no permission). */
export class InputFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`cannot read ${file}: ${reason}`);
    this.name = 'InputFileError';
  }
}

/** Content types by file extension, so the gateway stores (and later serves) the upload with a sensible one. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.wav': 'audio/wav',
  '.mp3': 'audio/mpeg',
  '.m4a': 'audio/mp4',
  '.aac': 'audio/aac',
  '.flac': 'audio/flac',
  '.ogg': 'audio/ogg',
  '.oga': 'audio/ogg',
  '.opus': 'audio/opus',
  '.webm': 'audio/webm',
  '.mp4': 'video/mp4',
  '.mov': 'video/quicktime',
  '.mkv': 'video/x-matroska',
};

/** Content type for an upload by its extension; `application/octet-stream` when unknown (the gateway probes the bytes anyway). */
export function contentTypeFor(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The multipart body of a submission. A file is streamed from disk (`fs.openAsBlob`), never read
 * whole into memory.
 *
 * @throws InputFileError when the file is missing, not a regular file, or unreadable.
 */
export async function buildSubmitForm(request: SubmitRequest): Promise<FormData> {
  const form = new FormData();
  for (const [name, value] of Object.entries(request.fields)) form.append(name, value);
  if ('file' in request.source) {
    const file = request.source.file;
    // openAsBlob's own error says only "Unable to open file as blob": check first to say why.
    let blob: Blob;
    try {
      if (!(await stat(file)).isFile()) throw new InputFileError(file, 'not a regular file');
      await access(file, constants.R_OK);
      blob = await openAsBlob(file, { type: contentTypeFor(file) });
    } catch (err) {
      if (err instanceof InputFileError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new InputFileError(file, code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message));
    }
    form.append('file', blob, path.basename(file));
  } else {
    form.append('audio_url', request.source.audioUrl);
  }
  return form;
}

/** The API's error `message` from a response body (JSON `{message}` string or array, else the text itself). */
export function apiErrorMessage(status: number, bodyText: string): { code: string | null; message: string } {
  try {
    const body = JSON.parse(bodyText) as { message?: unknown; code?: unknown };
    const message = Array.isArray(body.message) ? body.message.join('; ') : typeof body.message === 'string' ? body.message : null;
    if (message) return { code: typeof body.code === 'string' ? body.code : null, message };
  } catch {
    // Not JSON (a proxy's HTML page, say): fall through to the raw text.
  }
  const text = bodyText.trim().replace(/\s+/g, ' ').slice(0, 200);
  return { code: null, message: text ? `HTTP ${status}: ${text}` : `HTTP ${status}` };
}

const isTerminal = (event: JobStatusEvent) => event.status === 'completed' || event.status === 'failed' || event.status === 'cancelled';

export interface GatewayClientOptions {
  /** Gateway root, e.g. `http://localhost:8000` (a trailing slash is fine). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` when given. */
  apiKey?: string;
  /** How many times to reopen an event stream that ends before a terminal state (default 5). */
  maxReconnects?: number;
  /** Milliseconds between reopening attempts (default 1000). */
  reconnectDelayMs?: number;
}

/** The job API over global fetch. Every method throws ApiError or ConnectionError. */
export class GatewayClient {
  private readonly base: string;

  constructor(private readonly options: GatewayClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
  }

  /** Absolute URL of a path under `/api/transcribe/jobs`. */
  url(path: string): string {
    return `${this.base}/api/transcribe/jobs${path}`;
  }

  /** `GET /engines`. */
  async engines(): Promise<EnginesResponse> {
    return (await (await this.request('/engines')).json()) as EnginesResponse;
  }

  /**
   * `POST /transcribe` (202). Throws InputFileError when the file cannot be read, ApiError for
   * 400 (bad field, unknown engine), 413, 415, 422.
   */
  async submit(request: SubmitRequest): Promise<SubmitResponse> {
    const body = await buildSubmitForm(request);
    return (await (await this.request('/transcribe', { method: 'POST', body })).json()) as SubmitResponse;
  }

  /** `GET /status/:job_id`. ApiError 400 (not a UUID), 404 (unknown). */
  async status(jobId: string): Promise<JobStatusEvent> {
    return (await (await this.request(`/status/${encodeURIComponent(jobId)}`)).json()) as JobStatusEvent;
  }

  /** `GET /result/:job_id?format=…` as text (JSON is returned as the server sent it). ApiError 404, 409 while not completed. */
  async result(jobId: string, format: ResultFormat): Promise<string> {
    return (await this.request(`/result/${encodeURIComponent(jobId)}?format=${format}`)).text();
  }

  /**
   * Follows `GET /stream/:job_id` until a terminal state, calling `onEvent` for every status
   * event, and returns the terminal event (`completed` or `failed`; the caller decides what a
   * failure means). A stream that ends or breaks early is reopened (the gateway sends the current
   * state first, so nothing is lost) up to `maxReconnects` times in a row.
   *
   * @throws ApiError (404 unknown job), ConnectionError (unreachable, or the stream kept dropping).
   */
  async follow(jobId: string, onEvent: (event: JobStatusEvent) => void): Promise<JobStatusEvent> {
    const maxReconnects = this.options.maxReconnects ?? 5;
    const delayMs = this.options.reconnectDelayMs ?? 1000;
    const url = this.url(`/stream/${encodeURIComponent(jobId)}`);
    let failures = 0;
    let reason = 'the event stream ended before the job finished';
    for (;;) {
      try {
        const res = await this.request(`/stream/${encodeURIComponent(jobId)}`, { headers: { Accept: 'text/event-stream' } });
        const decoder = new SseDecoder();
        const text = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          for (const message of decoder.feed(text.decode(chunk, { stream: true }))) {
            const event = JSON.parse(message.data) as JobStatusEvent;
            failures = 0;
            onEvent(event);
            if (isTerminal(event)) return event;
          }
        }
        reason = 'the event stream ended before the job finished';
      } catch (err) {
        if (err instanceof ApiError) throw err;
        if (err instanceof SyntaxError) throw new ApiError(200, null, `unreadable event on ${url}: ${err.message}`);
        reason = err instanceof ConnectionError ? err.reason : describeNetworkError(err);
      }
      if (++failures > maxReconnects) throw new ConnectionError(url, reason);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }

  /** fetch with the API key; non-2xx → ApiError with the API's message; no answer → ConnectionError. */
  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    const url = this.url(path);
    const headers = new Headers(init.headers);
    if (this.options.apiKey) headers.set('Authorization', `Bearer ${this.options.apiKey}`);
    let res: Response;
    try {
      res = await fetch(url, { ...init, headers });
    } catch (err) {
      throw new ConnectionError(this.base, describeNetworkError(err));
    }
    if (!res.ok) {
      const { code, message } = apiErrorMessage(res.status, await res.text().catch(() => ''));
      throw new ApiError(res.status, code, message);
    }
    return res;
  }
}

/** The useful part of a fetch failure: undici wraps the socket error (`ECONNREFUSED`, `ENOTFOUND`…) as `cause`. */
export function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}
