import { stat } from 'node:fs/promises';
import { EngineError, engineCodeForHttpStatus, type EngineErrorCode } from '../engine.error.js';
import type {
  EngineAudio,
  EngineCapabilities,
  EngineHealth,
  TranscribeContext,
  TranscribeOptions,
  TranscriptionEngine,
  TranscriptionResult,
} from '../engine.spec.js';
import { isRedirectRefusal, multipartUpload } from '../multipart.js';
import { WHISPER_LANGUAGE_CODES, whisperLanguageCode } from '../whisper-languages.js';
import { mapVerboseJson, verboseJsonViolation, type VerboseJson } from './openai-compatible.mapper.js';

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
  /** True when the server has `POST /v1/audio/translations` (capabilities.translation). */
  translation: boolean;
}

/** Path of the transcription endpoint, relative to the server root. */
export const TRANSCRIPTIONS_PATH = '/v1/audio/transcriptions';
/** Path of the translation endpoint (speech in any language → English text), relative to the server root. */
export const TRANSLATIONS_PATH = '/v1/audio/translations';
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
      error_param: typeof inner.param === 'string' || inner.param === null ? (inner.param) : undefined,
      error_code: typeof inner.code === 'string' || typeof inner.code === 'number' || inner.code === null ? (inner.code) : undefined,
    };
  } catch {
    return { body_excerpt: text.slice(0, EXCERPT_CHARS) };
  }
}

/** A protocol identifier (an OpenAI error code, a health `status`) that is safe to quote in a public message. */
const SAFE_TOKEN = /^[A-Za-z0-9_.:-]{1,64}$/;
const safeToken = (value: unknown): string | undefined => (typeof value === 'string' && SAFE_TOKEN.test(value) ? value : undefined);

/**
 * Fields of whisper-rocm's `/health` body shown on `/engines` (scalars only). `model` may be a
 * checkpoint path (WHISPER_MODEL): only its file name is shown. Anything else the server adds
 * (an `error` text, for one) stays in the private details.
 */
const PUBLIC_HEALTH_FIELDS = ['status', 'model', 'device', 'device_name', 'fp16', 'hip_version', 'cuda_version', 'torch_version', 'load_seconds'] as const;

function publicHealthDetails(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of PUBLIC_HEALTH_FIELDS) {
    const value = body[key];
    if (typeof value === 'number' || typeof value === 'boolean') out[key] = value;
    else if (typeof value === 'string') out[key] = key === 'model' ? value.split(/[\\/]/).pop() : value.slice(0, 100);
  }
  return out;
}

/**
 * Adapter for any server that speaks the OpenAI transcription API: the project's whisper-rocm
 * service, the OpenAI cloud, speaches, vLLM, whisper.cpp's server. Each configured instance is an
 * engine of its own. This class is the one place that talks HTTP to such servers (global fetch).
 *
 * One call = one `POST /v1/audio/transcriptions` with the whole (already chunked) 16 kHz mono WAV,
 * streamed from disk, asking for `verbose_json` with segment and word timestamps; with
 * `task: 'translate'`, one `POST /v1/audio/translations` asking for `verbose_json` (segments only:
 * the translations endpoint has no word timestamps).
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
      translation: instance.translation,
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
   * @returns available on HTTP 2xx; public `details` are the known scalar fields of the server's
   *   body (model, device, versions; see PUBLIC_HEALTH_FIELDS) or, for `/v1/models`, whether the
   *   configured model is listed; the URL, network errors and the raw body are in `internal`.
   */
  async health(signal: AbortSignal): Promise<EngineHealth> {
    const path = this.instance.healthPath ?? MODELS_PATH;
    const url = `${this.root}${path}`;
    try {
      const res = await fetch(url, {
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
      if (this.instance.healthPath === null) return this.modelsHealth(res.status, text, url);
      if (!res.ok) {
        const status = safeToken(record.status);
        return {
          available: false,
          message: `health answered HTTP ${res.status}${status ? ` (${status})` : ''}`,
          details: { http_status: res.status, ...publicHealthDetails(record) },
          internal: { url, body_excerpt: text.slice(0, EXCERPT_CHARS) },
        };
      }
      const details = publicHealthDetails(record);
      const model = typeof details.model === 'string' ? details.model : undefined;
      const device = typeof details.device === 'string' ? details.device : undefined;
      return {
        available: true,
        message: model ? `model ${model} loaded${device ? ` on ${device}` : ''}` : 'ok',
        details,
        internal: { url },
      };
    } catch (err) {
      return { available: false, message: `health probe failed: ${networkSummary(err)}`, internal: { url, ...networkDetails(err) } };
    }
  }

  private modelsHealth(status: number, text: string, url: string): EngineHealth {
    if (status < 200 || status >= 300) {
      const fields = errorFields(text);
      const why = status === 401 || status === 403 ? 'the API key was refused' : `${MODELS_PATH} answered HTTP ${status}`;
      const code = safeToken(fields.error_code);
      return { available: false, message: `${why}${code ? ` (${code})` : ''}`, details: { http_status: status }, internal: { url, ...fields } };
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const data = typeof body === 'object' && body !== null ? (body as { data?: unknown }).data : undefined;
    const ids = Array.isArray(data)
      ? data.map((m) => (typeof m === 'object' && m !== null ? (m as Record<string, unknown>).id : undefined)).filter((id): id is string => typeof id === 'string')
      : [];
    const listed = ids.includes(this.instance.model);
    return {
      available: true,
      message: listed ? `model ${this.instance.model} listed` : `reachable; model ${this.instance.model} is not among the ${ids.length} listed`,
      details: { model: this.instance.model, model_listed: listed, models_count: ids.length },
      internal: { url },
    };
  }

  /**
   * Sends one piece of audio, streamed from disk as the multipart `file` (never read whole into
   * memory, whatever its length).
   *
   * Multipart fields: `file` (audio.wav, audio/wav), `model`, `language` (Whisper's code for the
   * request's language: whisperLanguageCode, `en-US` → `en`), `prompt`,
   * `response_format=verbose_json`, `timestamp_granularities[]` = `segment` and `word` (word alone
   * would drop the segments), `temperature=0`.
   *
   * `options.task === 'translate'`: `POST /v1/audio/translations` with OpenAI's translation fields
   * only — `file`, `model`, `prompt` (in English, as OpenAI asks), `response_format=verbose_json`,
   * `temperature=0`. That endpoint has no `language` (the speech's language is detected; a
   * requested one becomes a warning) and no word timestamps. The result's language is `en`.
   *
   * @param audio 16 kHz mono s16le WAV.
   * @throws EngineError (retryable by code, see ENGINE_ERRORS): ENGINE_UNAVAILABLE (network,
   *   502/503), ENGINE_TIMEOUT (the instance's timeout, 408/504), ENGINE_OVERLOADED (429;
   *   Retry-After kept in details), ENGINE_INTERNAL (409/5xx; or the audio file cannot be read),
   *   ENGINE_UNAUTHORIZED (401/403), ENGINE_REJECTED (other 4xx, or audio over the instance's
   *   upload cap), ENGINE_BAD_RESPONSE (unparsable or misshapen JSON, a redirect), ENGINE_CANCELLED (the
   *   context's signal aborted). The server's own error body is in `details`, never in the message.
   */
  async transcribe(audio: EngineAudio, options: TranscribeOptions, context: TranscribeContext): Promise<TranscriptionResult> {
    const warnings: string[] = [];
    const translate = options.task === 'translate';
    if (translate && !this.capabilities.translation) {
      // Refused at submit (checkEngineTask); this guards direct callers from getting a transcript that claims to be a translation.
      throw new EngineError('ENGINE_REJECTED', `${this.id} is configured without translation (task=translate)`, this.id, { details: { task: options.task } });
    }
    if (options.diarization?.enabled) warnings.push(`${this.id} does not do speaker diarization; speakers were not attributed`);
    if (options.word_boosts?.length) warnings.push(`${this.id} does not support word boosting; boost phrases were ignored`);
    let language: string | null = null;
    if (options.language && options.language.toLowerCase() !== 'auto') {
      language = whisperLanguageCode(options.language);
      if (language === null) warnings.push(`language '${options.language}' is not one Whisper knows; the language was detected instead`);
      else if (translate) {
        warnings.push(`the translations API takes no language: the spoken language was detected rather than taken as '${options.language}'`);
        language = null;
      }
    }
    const model = options.model ?? this.instance.model;

    if (context.signal.aborted) throw this.cancelled(context.signal.reason);
    let size: number;
    try {
      size = (await stat(audio.path)).size;
    } catch (err) {
      throw this.unreadableAudio(err, audio.path);
    }
    const cap = this.instance.maxUploadBytes;
    if (cap && size + MULTIPART_ALLOWANCE_BYTES > cap) {
      throw new EngineError(
        'ENGINE_REJECTED',
        `${size} bytes of audio exceed ${this.id}'s upload limit of ${cap} bytes; audio longer than ${this.capabilities.max_duration_sec} s must be chunked`,
        this.id,
        { details: { size_bytes: size, max_upload_bytes: cap } },
      );
    }

    const fields: [string, string][] = [['model', model]];
    if (language) fields.push(['language', language]);
    if (options.prompt) fields.push(['prompt', options.prompt]);
    fields.push(['response_format', 'verbose_json']);
    // OpenAI's translations endpoint has no timestamp_granularities: its verbose_json carries segments only.
    if (!translate) fields.push(['timestamp_granularities[]', 'segment'], ['timestamp_granularities[]', 'word']);
    fields.push(['temperature', '0']);

    const url = `${this.root}${translate ? TRANSLATIONS_PATH : TRANSCRIPTIONS_PATH}`;
    const timeout = AbortSignal.timeout(this.instance.timeoutMs);
    const signal = AbortSignal.any([context.signal, timeout]);
    context.onProgress?.({ fraction: 0.1, stage: 'uploading' });

    let res: Response;
    let text: string;
    try {
      const upload = await multipartUpload({ field: 'file', path: audio.path, filename: 'audio.wav', type: 'audio/wav' }, fields);
      res = await fetch(url, { method: 'POST', ...upload.init, headers: { ...this.headers(), ...upload.headers }, signal });
      text = await res.text();
    } catch (err) {
      if (context.signal.aborted) throw this.cancelled(err);
      if (timeout.aborted) {
        throw new EngineError('ENGINE_TIMEOUT', `${this.id} did not answer within ${this.instance.timeoutMs / 1000} s`, this.id, {
          details: { url, timeout_ms: this.instance.timeoutMs },
          cause: err,
        });
      }
      if (isFsError(err)) throw this.unreadableAudio(err, audio.path);
      if (isRedirectRefusal(err)) {
        throw new EngineError('ENGINE_BAD_RESPONSE', `${this.id} answered with a redirect; its base URL must be the final address of the server`, this.id, {
          details: { url, ...networkDetails(err) },
          cause: err,
        });
      }
      throw new EngineError('ENGINE_UNAVAILABLE', `${this.id} cannot be reached (${networkSummary(err)})`, this.id, {
        details: { url, ...networkDetails(err) },
        cause: err,
      });
    }

    if (!res.ok) throw this.httpError(res, text, { model, language });
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw this.badResponse(res, text, 'the body is not JSON', (err as Error).message);
    }
    const violation = verboseJsonViolation(body);
    if (violation) throw this.badResponse(res, text, violation);

    const mapped = mapVerboseJson(body as VerboseJson, audio.duration_sec, { wordTimes: !translate });
    warnings.push(...mapped.notes);
    if (mapped.segments.length === 0) warnings.push('no speech found');
    context.onProgress?.({ fraction: 1, stage: translate ? 'translating' : 'recognizing' });
    return {
      text: mapped.text,
      // A translation is English text, whatever language the server reports (OpenAI: `english`; some servers: the spoken one).
      language: translate ? 'en' : (mapped.language ?? language),
      duration_sec: mapped.duration_sec,
      segments: mapped.segments,
      warnings,
      engine: { id: this.id, model },
    };
  }

  private cancelled(cause: unknown): EngineError {
    return new EngineError('ENGINE_CANCELLED', `${this.id} call cancelled`, this.id, { cause });
  }

  /** The gateway's own WAV is gone or unreadable: a local fault, not the server's; another attempt re-decodes it. */
  private unreadableAudio(err: unknown, path: string): EngineError {
    return new EngineError('ENGINE_INTERNAL', `the audio to send to ${this.id} cannot be read`, this.id, {
      details: { path, error: err instanceof Error ? err.message : String(err) },
      cause: err,
    });
  }

  /**
   * A non-2xx answer. The public message names the status, the server's error code when it is a
   * plain identifier (`model_not_found`) and which of our own request values it is about; the
   * server's message and body stay in `details` (they may quote paths or internals).
   */
  private httpError(res: Response, text: string, sent: { model: string; language: string | null }): EngineError {
    const code: EngineErrorCode = engineCodeForHttpStatus(res.status);
    const fields = errorFields(text);
    const retryAfter = res.headers.get('retry-after');
    const details: Record<string, unknown> = { http_status: res.status, ...fields };
    if (retryAfter !== null) details.retry_after = retryAfter;
    const upstreamCode = safeToken(fields.error_code);
    const about =
      fields.error_param === 'model' ? ` for model '${sent.model}'` : fields.error_param === 'language' && sent.language ? ` for language '${sent.language}'` : '';
    return new EngineError(code, `${this.id} answered HTTP ${res.status}${upstreamCode ? ` (${upstreamCode})` : ''}${about}`, this.id, {
      upstreamStatus: res.status,
      details,
    });
  }

  /** A 2xx body we cannot use (retryable: a proxy error page or a cut connection is the usual cause). */
  private badResponse(res: Response, text: string, why: string, parseError?: string): EngineError {
    return new EngineError('ENGINE_BAD_RESPONSE', `${this.id} answered with an unusable transcription: ${why}`, this.id, {
      upstreamStatus: res.status,
      details: {
        http_status: res.status,
        content_type: res.headers.get('content-type'),
        reason: why,
        ...(parseError ? { parse_error: parseError } : {}),
        body_excerpt: text.slice(0, EXCERPT_CHARS),
      },
    });
  }
}

/** fs errors (from opening the audio) carry a string `code` and a `syscall`; network errors from fetch do not. */
function isFsError(err: unknown): boolean {
  const e = err as { code?: unknown; syscall?: unknown } | undefined;
  return typeof e?.code === 'string' && typeof e.syscall === 'string' && ['open', 'read', 'stat', 'fstat'].includes(e.syscall);
}

/** fetch wraps socket errors as `TypeError: fetch failed` with the system error (ECONNREFUSED…) as cause. */
function networkDetails(err: unknown): Record<string, unknown> {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  return { cause_code: typeof cause?.code === 'string' ? cause.code : null, cause_message: typeof cause?.message === 'string' ? cause.message : null };
}

/**
 * A public summary of a network failure: the error code (`ECONNREFUSED`, `UND_ERR_SOCKET`) only,
 * since the system messages name the host and port.
 */
function networkSummary(err: unknown): string {
  const { cause_code } = networkDetails(err);
  if (typeof cause_code === 'string') return cause_code;
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return 'timed out';
  return 'network error';
}
