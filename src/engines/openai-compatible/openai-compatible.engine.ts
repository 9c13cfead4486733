import { readFile } from 'node:fs/promises';
import { EngineError, type EngineErrorCode } from '../engine.error.js';
import type {
  EngineAudio,
  EngineCapabilities,
  EngineHealth,
  TranscribeContext,
  TranscribeOptions,
  TranscriptionEngine,
  TranscriptionResult,
} from '../engine.spec.js';
import {
  mapVerboseJson,
  verboseJsonViolation,
  whisperLanguageCode,
  WHISPER_LANGUAGE_CODES,
  type VerboseJson,
} from './openai-compatible.mapper.js';

/** One configured server speaking the OpenAI transcription API (an engine id of its own). */
export interface OpenAiCompatibleInstance {
  /** Engine id, e.g. `whisper-rocm`, `openai`; must be in the `transcription_engine` enum. */
  id: string;
  displayName: string;
  /** Server root, e.g. `http://whisper-rocm:9000` or `https://api.openai.com`; a trailing `/v1` is dropped. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` when set. */
  apiKey?: string;
  /** Default `model` form field. */
  model: string;
  /** Milliseconds one transcription request may take (upload + recognition + response). */
  timeoutMs: number;
  /** Health probe path (`/health`), or null for servers without one (the OpenAI cloud): then `GET /v1/models` with the key. */
  healthPath: string | null;
  /** Language codes the server takes; default Whisper's list. */
  languages?: string[];
  /** Largest request body the server accepts, bytes; sets capabilities.max_duration_sec. Unset = no limit. */
  maxUploadBytes?: number;
  /** Seconds; null = the gateway's default. */
  chunkingThresholdSec: number | null;
  /** Seconds; null = the gateway's default. */
  chunkDurationSec: number | null;
  /** True: never chunk, the server gets each recording whole (capabilities.whole_file). */
  wholeFile?: boolean;
  /** Requests this server can run at once (for the gateway's chunk queue). */
  concurrency: number;
}

/** Path of the transcription endpoint, relative to the server root. */
export const TRANSCRIPTIONS_PATH = '/v1/audio/transcriptions';
const MODELS_PATH = '/v1/models';
/** 16 kHz × 1 channel × 2 bytes: bytes per second of the audio engines receive. */
const PCM_BYTES_PER_SEC = 32_000;
/** Room left in a size-capped request for the WAV header and the other multipart fields (prompt included). */
const MULTIPART_ALLOWANCE_BYTES = 16_384;
/** Upper bound for one health probe, whatever the caller's signal allows. */
const HEALTH_TIMEOUT_MS = 10_000;
const EXCERPT_CHARS = 500;

/** The OpenAI error body `{"error": {message, type, param, code}}`, or the looser shapes compatible servers send. */
interface ErrorFields {
  error_message?: string;
  error_type?: string;
  error_param?: string | null;
  error_code?: string | number | null;
  body_excerpt?: string;
}

function errorFields(text: string): ErrorFields {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    const inner = typeof body.error === 'object' && body.error !== null ? (body.error as Record<string, unknown>) : body;
    const message = inner.message ?? body.detail ?? (typeof body.error === 'string' ? body.error : undefined);
    return {
      error_message: typeof message === 'string' ? message : message === undefined ? undefined : JSON.stringify(message),
      error_type: typeof inner.type === 'string' ? inner.type : undefined,
      error_param: typeof inner.param === 'string' || inner.param === null ? (inner.param as string | null) : undefined,
      error_code: typeof inner.code === 'string' || typeof inner.code === 'number' || inner.code === null ? (inner.code as string | number | null) : undefined,
    };
  } catch {
    return { body_excerpt: text.slice(0, EXCERPT_CHARS) };
  }
}

/**
 * HTTP status → error code and retry decision. 408/409/429/5xx are retryable (the same rule
 * as the OpenAI SDKs and the Vercel AI SDK's `isRetryable`), every other 4xx is not.
 */
function classifyStatus(status: number): { code: EngineErrorCode; retryable: boolean } {
  if (status === 401 || status === 403) return { code: 'ENGINE_UNAUTHORIZED', retryable: false };
  if (status === 429) return { code: 'ENGINE_OVERLOADED', retryable: true };
  if (status === 408 || status === 504) return { code: 'ENGINE_TIMEOUT', retryable: true };
  // 502/503: a proxy without an upstream, or the model still loading (whisper-rocm's model_not_loaded).
  if (status === 502 || status === 503) return { code: 'ENGINE_UNAVAILABLE', retryable: true };
  if (status === 409 || status >= 500) return { code: 'ENGINE_INTERNAL', retryable: true };
  return { code: 'ENGINE_REJECTED', retryable: false };
}

/**
 * Adapter for any server that speaks the OpenAI transcription API: the project's whisper-rocm
 * service, the OpenAI cloud, speaches, vLLM, whisper.cpp's server. Each configured instance is an
 * engine of its own. This class is the one place that talks HTTP to such servers (global fetch).
 *
 * One call = one `POST /v1/audio/transcriptions` with the whole (already chunked) 16 kHz mono WAV,
 * asking for `verbose_json` with segment and word timestamps.
 */
export class OpenAiCompatibleEngine implements TranscriptionEngine {
  readonly id: string;
  readonly displayName: string;
  readonly capabilities: EngineCapabilities;
  /** Requests the server can run at once: the gateway's chunk queue sends no more than this in parallel. */
  readonly concurrency: number;
  private readonly root: string;

  constructor(private readonly instance: OpenAiCompatibleInstance) {
    this.id = instance.id;
    this.displayName = instance.displayName;
    this.concurrency = instance.concurrency;
    // The SDKs' base URL ends in /v1; accept both forms.
    this.root = instance.baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
    this.capabilities = {
      diarization: false,
      word_boosting: false,
      word_timestamps: true,
      language_detection: true,
      languages: instance.languages ?? [...WHISPER_LANGUAGE_CODES],
      models: [instance.model],
      max_duration_sec: instance.maxUploadBytes
        ? Math.max(1, Math.floor((instance.maxUploadBytes - MULTIPART_ALLOWANCE_BYTES) / PCM_BYTES_PER_SEC))
        : null,
      chunking_threshold_sec: instance.chunkingThresholdSec,
      chunk_duration_sec: instance.chunkDurationSec,
      ...(instance.wholeFile ? { whole_file: true } : {}),
    };
  }

  private headers(): Record<string, string> {
    return this.instance.apiKey ? { Authorization: `Bearer ${this.instance.apiKey}` } : {};
  }

  /**
   * Probes `GET {healthPath}` (whisper-rocm: 200 once the model is loaded, with model/device in the
   * body), or `GET /v1/models` with the key when the server has no health endpoint. Never throws.
   *
   * @returns available on HTTP 2xx; `details` is the server's JSON body (model, device, …) or, for
   *   `/v1/models`, the listed model ids and whether the configured model is among them.
   */
  async health(signal: AbortSignal): Promise<EngineHealth> {
    const path = this.instance.healthPath ?? MODELS_PATH;
    try {
      const res = await fetch(`${this.root}${path}`, {
        headers: this.headers(),
        signal: AbortSignal.any([signal, AbortSignal.timeout(HEALTH_TIMEOUT_MS)]),
      });
      const text = await res.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      const record = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
      if (this.instance.healthPath === null) return this.modelsHealth(res.status, record);
      if (!res.ok) {
        const reason = record.error ?? record.status ?? (errorFields(text).error_message || text.slice(0, 200));
        return {
          available: false,
          message: `health answered HTTP ${res.status}${reason ? `: ${typeof reason === 'string' ? reason : JSON.stringify(reason)}` : ''}`,
          details: { http_status: res.status, ...record },
        };
      }
      const model = typeof record.model === 'string' ? record.model : undefined;
      const device = typeof record.device === 'string' ? record.device : undefined;
      return {
        available: true,
        message: model ? `model ${model} loaded${device ? ` on ${device}` : ''}` : 'ok',
        details: record,
      };
    } catch (err) {
      return { available: false, message: `health probe failed: ${describeNetworkError(err)}`, details: { url: `${this.root}${path}` } };
    }
  }

  private modelsHealth(status: number, body: Record<string, unknown>): EngineHealth {
    if (status < 200 || status >= 300) {
      const fields = errorFields(JSON.stringify(body));
      const why = status === 401 || status === 403 ? 'the API key was refused' : `${MODELS_PATH} answered HTTP ${status}`;
      return { available: false, message: `${why}${fields.error_message ? `: ${fields.error_message}` : ''}`, details: { http_status: status } };
    }
    const ids = Array.isArray(body.data)
      ? body.data.map((m) => (typeof m === 'object' && m !== null ? (m as Record<string, unknown>).id : undefined)).filter((id): id is string => typeof id === 'string')
      : [];
    const listed = ids.includes(this.instance.model);
    return {
      available: true,
      message: listed ? `model ${this.instance.model} listed` : `reachable; model ${this.instance.model} is not among the ${ids.length} listed`,
      details: { model: this.instance.model, model_listed: listed, models_count: ids.length },
    };
  }

  /**
   * Sends one piece of audio (the gateway chunks long audio first, so a piece lasts a few minutes
   * at most and is read whole into memory: 32 000 bytes per second, about 9.6 MB for 300 s).
   *
   * Multipart fields: `file` (audio.wav, audio/wav), `model`, `language` (ISO-639-1, from the
   * request's BCP-47 tag), `prompt`, `response_format=verbose_json`, `timestamp_granularities[]`
   * = `segment` and `word` (word alone would drop the segments), `temperature=0`.
   *
   * @param audio 16 kHz mono s16le WAV.
   * @throws EngineError ENGINE_UNAVAILABLE (network, 502/503; retryable), ENGINE_TIMEOUT (the
   *   instance's timeout, 408/504; retryable), ENGINE_OVERLOADED (429; retryable, Retry-After kept
   *   in details), ENGINE_INTERNAL (409/5xx; retryable), ENGINE_UNAUTHORIZED (401/403),
   *   ENGINE_REJECTED (other 4xx, or audio over the instance's upload cap), ENGINE_BAD_RESPONSE
   *   (unparsable or misshapen JSON; retryable, as it is usually a proxy hiccup), ENGINE_CANCELLED
   *   (the context's signal aborted; not retryable).
   */
  async transcribe(audio: EngineAudio, options: TranscribeOptions, context: TranscribeContext): Promise<TranscriptionResult> {
    const warnings: string[] = [];
    if (options.diarization?.enabled) warnings.push(`${this.id} does not do speaker diarization; speakers were not attributed`);
    if (options.word_boosts?.length) warnings.push(`${this.id} does not support word boosting; boost phrases were ignored`);
    let language: string | null = null;
    if (options.language && options.language.toLowerCase() !== 'auto') {
      language = whisperLanguageCode(options.language);
      if (language === null) warnings.push(`language '${options.language}' is not one Whisper knows; the language was detected instead`);
    }
    const model = options.model ?? this.instance.model;

    if (context.signal.aborted) throw this.cancelled(context.signal.reason);
    let data: Buffer;
    try {
      data = await readFile(audio.path);
    } catch (err) {
      throw new EngineError('ENGINE_INTERNAL', `cannot read the audio to send: ${(err as Error).message}`, true, this.id, { path: audio.path }, { cause: err });
    }
    const cap = this.instance.maxUploadBytes;
    if (cap && data.byteLength + MULTIPART_ALLOWANCE_BYTES > cap) {
      throw new EngineError(
        'ENGINE_REJECTED',
        `${data.byteLength} bytes of audio exceed ${this.id}'s upload limit of ${cap} bytes; audio longer than ${this.capabilities.max_duration_sec} s must be chunked`,
        false,
        this.id,
        { size_bytes: data.byteLength, max_upload_bytes: cap },
      );
    }

    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(data.buffer, data.byteOffset, data.byteLength)], { type: 'audio/wav' }), 'audio.wav');
    form.append('model', model);
    if (language) form.append('language', language);
    if (options.prompt) form.append('prompt', options.prompt);
    form.append('response_format', 'verbose_json');
    form.append('timestamp_granularities[]', 'segment');
    form.append('timestamp_granularities[]', 'word');
    form.append('temperature', '0');

    const url = `${this.root}${TRANSCRIPTIONS_PATH}`;
    const timeout = AbortSignal.timeout(this.instance.timeoutMs);
    const signal = AbortSignal.any([context.signal, timeout]);
    context.onProgress?.({ fraction: 0.1, stage: 'uploading' });

    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method: 'POST', headers: this.headers(), body: form, signal });
      text = await res.text();
    } catch (err) {
      if (context.signal.aborted) throw this.cancelled(err);
      if (timeout.aborted) {
        throw new EngineError('ENGINE_TIMEOUT', `${this.id} did not answer within ${this.instance.timeoutMs / 1000} s`, true, this.id, { url, timeout_ms: this.instance.timeoutMs }, { cause: err });
      }
      throw new EngineError('ENGINE_UNAVAILABLE', `${this.id} cannot be reached at ${url}: ${describeNetworkError(err)}`, true, this.id, { url, ...networkDetails(err) }, { cause: err });
    }

    if (!res.ok) throw this.httpError(res, text);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw this.badResponse(res, text, `the body is not JSON (${(err as Error).message})`);
    }
    const violation = verboseJsonViolation(body);
    if (violation) throw this.badResponse(res, text, violation);

    const mapped = mapVerboseJson(body as VerboseJson, audio.duration_sec);
    warnings.push(...mapped.notes);
    if (mapped.segments.length === 0) warnings.push('no speech found');
    context.onProgress?.({ fraction: 1, stage: 'recognizing' });
    return {
      text: mapped.text,
      language: mapped.language ?? language,
      duration_sec: mapped.duration_sec,
      segments: mapped.segments,
      warnings,
      engine: { id: this.id, model },
    };
  }

  private cancelled(cause: unknown): EngineError {
    return new EngineError('ENGINE_CANCELLED', `${this.id} call cancelled`, false, this.id, {}, { cause });
  }

  private httpError(res: Response, text: string): EngineError {
    const { code, retryable } = classifyStatus(res.status);
    const fields = errorFields(text);
    const retryAfter = res.headers.get('retry-after');
    const details: Record<string, unknown> = { http_status: res.status, ...fields };
    if (retryAfter !== null) details.retry_after = retryAfter;
    const why = fields.error_message ?? fields.body_excerpt?.slice(0, 200) ?? res.statusText;
    return new EngineError(code, `${this.id} answered HTTP ${res.status}${why ? `: ${why}` : ''}`, retryable, this.id, details);
  }

  /** A 2xx body we cannot use: retryable, since a proxy error page or a cut connection is the usual cause. */
  private badResponse(res: Response, text: string, why: string): EngineError {
    return new EngineError('ENGINE_BAD_RESPONSE', `${this.id} answered with an unusable transcription: ${why}`, true, this.id, {
      http_status: res.status,
      content_type: res.headers.get('content-type'),
      reason: why,
      body_excerpt: text.slice(0, EXCERPT_CHARS),
    });
  }
}

/** fetch wraps socket errors as `TypeError: fetch failed` with the system error (ECONNREFUSED…) as cause. */
function networkDetails(err: unknown): Record<string, unknown> {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  return { cause_code: typeof cause?.code === 'string' ? cause.code : null, cause_message: typeof cause?.message === 'string' ? cause.message : null };
}

function describeNetworkError(err: unknown): string {
  const { cause_code, cause_message } = networkDetails(err);
  if (cause_code || cause_message) return [cause_code, cause_message].filter(Boolean).join(' ');
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
