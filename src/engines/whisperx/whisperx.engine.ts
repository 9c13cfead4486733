import path from 'node:path';
import { EngineError, engineCodeForHttpStatus } from '../engine.error.js';
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
import type { WhisperxConfig } from './whisperx.config.js';
import { assertWhisperxJson, mapWhisperxJson, WhisperxShapeError } from './whisperx.mapper.js';

/** The `detail` text of a whisper-asr-webservice (FastAPI) error body, or the body's start. */
function errorDetail(body: string): string {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === 'object' && 'detail' in parsed) {
      const detail = (parsed).detail;
      // FastAPI's own 422 validation errors carry a list of {loc, msg, type}.
      return typeof detail === 'string' ? detail : JSON.stringify(detail);
    }
  } catch {
    // Not JSON: a proxy's HTML page or plain text.
  }
  return body.slice(0, 500);
}

/**
 * Fields of a thrown value, read by shape: errors from fetch and fs may come from another realm
 * (a VM context), where `instanceof Error` is false.
 */
function errorFields(err: unknown): { message: string; code?: string; cause?: unknown } {
  if (typeof err !== 'object' || err === null) return { message: String(err) };
  const e = err as { message?: unknown; code?: unknown; cause?: unknown };
  return {
    message: typeof e.message === 'string' ? e.message : Object.prototype.toString.call(err),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(e.cause !== undefined ? { cause: e.cause } : {}),
  };
}

/** The network error code (`ECONNREFUSED`, `UND_ERR_SOCKET`, …) under fetch's `TypeError: fetch failed`. */
function networkCode(err: unknown): string | undefined {
  const { code, cause } = errorFields(err);
  return (cause === undefined ? undefined : errorFields(cause).code) ?? code;
}

/** Seconds from a `Retry-After` header given in seconds; HTTP dates are ignored. */
function retryAfterSec(header: string | null): number | undefined {
  return header !== null && /^\d+$/.test(header.trim()) ? Number(header.trim()) : undefined;
}

/**
 * The `whisperx` engine: WhisperX behind the whisper-asr-webservice HTTP API — the project's
 * engines/whisperx service, or a stock whisper-asr-webservice with `ASR_ENGINE=whisperx`
 * (WHISPERX_SEND_MODEL=false; it has no `model` parameter and no `/health`).
 *
 * One `POST /asr?output=json&…` per recording, with the whole 16 kHz mono WAV streamed from
 * disk as multipart `audio_file`: pyannote diarizes the whole file so that speaker labels stay
 * consistent, so this engine is never chunked. The only class that calls fetch for this protocol.
 */
export class WhisperxEngine implements TranscriptionEngine {
  readonly id = 'whisperx';
  readonly displayName = 'WhisperX (whisper-asr-webservice API, diarization)';
  readonly capabilities: EngineCapabilities;
  private readonly baseUrl: string;

  constructor(private readonly config: WhisperxConfig) {
    this.baseUrl = config.WHISPERX_SERVICE_URL.replace(/\/+$/, '');
    const models = config.WHISPERX_AVAILABLE_MODELS;
    this.capabilities = {
      diarization: true,
      word_boosting: false,
      word_timestamps: true,
      language_detection: true,
      // task=translate on /asr: Whisper decodes straight to English.
      translation: true,
      languages: [...WHISPER_LANGUAGE_CODES],
      models: [config.WHISPERX_DEFAULT_MODEL, ...models.filter((m) => m !== config.WHISPERX_DEFAULT_MODEL)],
      max_duration_sec: null,
      chunking_threshold_sec: null,
      chunk_duration_sec: null,
      // The whole recording in one call: pyannote must diarize the whole file (labels of
      // separately diarized chunks would not match), and the server cuts long audio at VAD
      // pauses itself, so the gateway never chunks for this engine.
      whole_file: true,
    };
  }

  private get sendsModel(): boolean {
    return this.config.WHISPERX_SEND_MODEL === 'true';
  }

  /**
   * `GET /health` (the project's service): available when it answers 200 with `status: "ok"`;
   * details carry device, compute type, loaded models and whether diarization is available.
   * A 404/405 there means a stock whisper-asr-webservice (no `/health`): then any answer below
   * 500 from `GET /docs` (its Swagger UI) counts as reachable, and the message says that model
   * and diarization state are unknown. Never throws; `signal` bounds the probe. The service URL,
   * network errors and the server's error texts are in `internal`, never in message or details.
   */
  async health(signal: AbortSignal): Promise<EngineHealth> {
    const internal = { url: this.baseUrl };
    try {
      const res = await fetch(`${this.baseUrl}/health`, { signal, headers: { Accept: 'application/json' } });
      const body = await res.text();
      if (res.status === 404 || res.status === 405) return await this.stockHealth(signal);
      if (res.status !== 200) {
        return { available: false, message: `GET /health answered ${res.status}`, details: { http_status: res.status }, internal: { ...internal, detail: errorDetail(body) } };
      }
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(body) as Record<string, unknown>;
      } catch {
        return { available: false, message: 'GET /health answered 200 with a body that is not JSON', internal: { ...internal, body_start: body.slice(0, 500) } };
      }
      const details: Record<string, unknown> = {
        device: parsed.device ?? null,
        compute_type: parsed.compute_type ?? null,
        default_model: parsed.default_model ?? null,
        loaded_models: parsed.loaded_models ?? [],
        diarization_available: parsed.diarization_available ?? null,
      };
      if (parsed.status !== 'ok') {
        const status = typeof parsed.status === 'string' && /^[\w.-]{1,32}$/.test(parsed.status) ? ` '${parsed.status}'` : ' other than ok';
        return { available: false, message: `GET /health reports a status${status}`, details, internal: { ...internal, status: parsed.status } };
      }
      const notes: string[] = [];
      if (parsed.diarization_available === false) notes.push('diarization is unavailable on the server (no HF_TOKEN): diarize requests will be rejected');
      if (Array.isArray(parsed.allowed_models)) {
        const missing = this.config.WHISPERX_AVAILABLE_MODELS.filter((m) => !(parsed.allowed_models as unknown[]).includes(m));
        if (missing.length > 0) notes.push(`models listed in WHISPERX_AVAILABLE_MODELS that the server does not allow: ${missing.join(', ')}`);
      }
      return { available: true, ...(notes.length ? { message: notes.join('; ') } : {}), details, internal };
    } catch (err) {
      return { available: false, message: this.describeNetworkFailure(err, signal, 'GET /health'), internal: { ...internal, error: errorFields(err).message } };
    }
  }

  private async stockHealth(signal: AbortSignal): Promise<EngineHealth> {
    const internal = { url: this.baseUrl };
    try {
      const res = await fetch(`${this.baseUrl}/docs`, { signal });
      await res.arrayBuffer();
      if (res.status >= 500) return { available: false, message: `no /health, and GET /docs answered ${res.status}`, details: { http_status: res.status }, internal };
      return {
        available: true,
        message: `reachable (GET /docs answered ${res.status}); no /health, as on a stock whisper-asr-webservice: loaded model and diarization state unknown`,
        details: { stock: true },
        internal,
      };
    } catch (err) {
      return { available: false, message: this.describeNetworkFailure(err, signal, 'GET /docs'), internal: { ...internal, error: errorFields(err).message } };
    }
  }

  /** A public line for a failed probe: the network code (ECONNREFUSED…), never the URL or the system message naming the host. */
  private describeNetworkFailure(err: unknown, signal: AbortSignal, what: string): string {
    if (signal.aborted) return `${what} did not answer in time`;
    return `${what} failed: ${networkCode(err) ?? 'network error'}`;
  }

  /** The `/asr` query for these options (every option is a query parameter in this API). */
  private query(options: TranscribeOptions, model: string, language: string | null): URLSearchParams {
    const q = new URLSearchParams({ task: options.task ?? 'transcribe', output: 'json', word_timestamps: 'true', encode: 'true' });
    if (language) q.set('language', language);
    if (options.prompt) q.set('initial_prompt', options.prompt);
    const diarization = options.diarization;
    q.set('diarize', diarization?.enabled ? 'true' : 'false');
    if (diarization?.enabled) {
      if (diarization.min_speakers !== undefined) q.set('min_speakers', String(diarization.min_speakers));
      if (diarization.max_speakers !== undefined) q.set('max_speakers', String(diarization.max_speakers));
    }
    if (this.sendsModel) q.set('model', model);
    return q;
  }

  /**
   * Transcribes the whole recording in one `POST /asr` call (multipart `audio_file`, the WAV
   * streamed from disk with an exact Content-Length; options as query parameters — see
   * docs/engines/whisperx.md). Progress: `uploading` 0.05, `recognizing` 0.1 once the upload is
   * sent (the server reports nothing until it answers), 1 when mapped.
   *
   * @param audio 16 kHz mono s16le WAV (the gateway's normalized audio); sent as is (`encode=true`
   *   lets the server read the WAV header).
   * @param options `diarization` absent means off; `model` must be in WHISPERX_AVAILABLE_MODELS
   *   (capabilities.models); `language` a Whisper language (capabilities.languages) as BCP-47 or
   *   ISO-639-1, absent = the server detects it. Both are checked at submit time too
   *   (checkEngineOptions), so the checks here only guard direct callers. `task` is sent as the
   *   `task` query parameter (`transcribe` when absent); with `translate`, `language` names the
   *   speech's language and the result's language is `en` (the server reports the spoken one).
   * @throws EngineError (retryable by code, see ENGINE_ERRORS) — ENGINE_REJECTED (unknown
   *   model/language, HTTP 400/404/422/other 4xx), ENGINE_UNAUTHORIZED (401/403),
   *   ENGINE_UNAVAILABLE (connection failed, 502/503), ENGINE_OVERLOADED (429), ENGINE_TIMEOUT
   *   (WHISPERX_TIMEOUT passed, 408/504), ENGINE_INTERNAL (409, other 5xx, audio file unreadable),
   *   ENGINE_BAD_RESPONSE (body not WhisperX JSON, a redirect), ENGINE_CANCELLED (context.signal aborted).
   *   `details` carry `http_status`, the server's `detail` and the service URL.
   */
  async transcribe(audio: EngineAudio, options: TranscribeOptions, context: TranscribeContext): Promise<TranscriptionResult> {
    const warnings: string[] = [];
    const model = options.model ?? this.config.WHISPERX_DEFAULT_MODEL;
    if (!this.config.WHISPERX_AVAILABLE_MODELS.includes(model)) {
      throw new EngineError('ENGINE_REJECTED', `whisperx model '${model}' is not available; available models: ${this.config.WHISPERX_AVAILABLE_MODELS.join(', ')}`, this.id, { details: { model } });
    }
    if (!this.sendsModel && options.model && options.model !== this.config.WHISPERX_DEFAULT_MODEL) {
      warnings.push(`this whisperx server has a fixed model (WHISPERX_SEND_MODEL=false); the requested model '${options.model}' was not sent`);
    }
    let language: string | null = null;
    if (options.language) {
      language = whisperLanguageCode(options.language);
      if (!language) throw new EngineError('ENGINE_REJECTED', `Whisper does not know the language '${options.language}'`, this.id, { details: { language: options.language } });
    }
    if (options.word_boosts?.length) warnings.push('whisperx does not support word boosting; boost phrases were ignored (use a prompt to bias spelling)');
    if (context.signal.aborted) throw new EngineError('ENGINE_CANCELLED', 'whisperx call cancelled', this.id);

    const url = `${this.baseUrl}/asr?${this.query(options, model, language).toString()}`;
    const timeout = AbortSignal.timeout(this.config.WHISPERX_TIMEOUT * 1000);
    const signal = AbortSignal.any([context.signal, timeout]);
    const onProgress = context.onProgress ?? (() => undefined);
    onProgress({ fraction: 0.05, stage: 'uploading' });

    let status: number;
    let text: string;
    let asrEngine: string | null;
    try {
      const filename = path.basename(audio.path);
      const upload = await multipartUpload({ field: 'audio_file', path: audio.path, filename, type: 'audio/wav' }, [], () =>
        onProgress({ fraction: 0.1, stage: 'recognizing' }),
      );
      const res = await fetch(url, { method: 'POST', ...upload.init, headers: { ...upload.headers, Accept: 'application/json' }, signal });
      status = res.status;
      asrEngine = res.headers.get('asr-engine');
      text = await res.text();
      if (status < 200 || status >= 300) {
        const detail = errorDetail(text);
        const retryAfter = retryAfterSec(res.headers.get('retry-after'));
        throw new EngineError(engineCodeForHttpStatus(status), `whisperx answered HTTP ${status}`, this.id, {
          upstreamStatus: status,
          details: { http_status: status, detail, url: this.baseUrl, ...(retryAfter !== undefined ? { retry_after_sec: retryAfter } : {}) },
        });
      }
    } catch (err) {
      throw this.toEngineError(err, context.signal, timeout, audio.path);
    }

    let parsed: unknown;
    try {
      // Served as text/plain even for JSON (whisper-asr-webservice does so): parse regardless.
      parsed = JSON.parse(text);
      assertWhisperxJson(parsed);
    } catch (err) {
      // The shape error names a JSON path of ours (`$.segments is not an array`); a JSON.parse message quotes the body.
      const problem = err instanceof WhisperxShapeError ? err.message : 'the body is not JSON';
      throw new EngineError('ENGINE_BAD_RESPONSE', `whisperx answered ${status} with an unusable body: ${problem}`, this.id, {
        upstreamStatus: status,
        details: { http_status: status, body_start: text.slice(0, 500), ...(asrEngine ? { asr_engine: asrEngine } : {}) },
        cause: err,
      });
    }
    const mapped = mapWhisperxJson(parsed, audio.duration_sec);
    if (asrEngine && asrEngine.toLowerCase() !== 'whisperx') {
      warnings.push(`the server runs ASR_ENGINE=${asrEngine}, not whisperx: no diarization and no word alignment from it`);
    }
    if (options.diarization?.enabled && mapped.segments.length > 0 && mapped.speakerLabels.length === 0) {
      warnings.push('diarization was requested but the server returned no speakers (a stock whisper-asr-webservice without HF_TOKEN skips it silently)');
    }
    if (mapped.interpolatedWords > 0) {
      warnings.push(`${mapped.interpolatedWords} word(s) came without times (digits, symbols the aligner cannot place); their times were interpolated and they are flagged interpolated`);
    }
    if (mapped.segments.length === 0) warnings.push('no speech found');
    onProgress({ fraction: 1, stage: 'done' });
    return {
      text: mapped.segments.map((s) => s.text).filter((t) => t !== '').join(' '),
      // A translation is English text; whisper-asr-webservice reports the spoken language even then.
      language: options.task === 'translate' ? 'en' : (mapped.language ?? language),
      duration_sec: audio.duration_sec,
      segments: mapped.segments,
      warnings,
      // A server without the model parameter runs its own model, which WHISPERX_DEFAULT_MODEL names.
      engine: { id: this.id, model: this.sendsModel ? model : this.config.WHISPERX_DEFAULT_MODEL },
    };
  }

  private toEngineError(err: unknown, cancel: AbortSignal, timeout: AbortSignal, file: string): EngineError {
    if (err instanceof EngineError) return err;
    if (cancel.aborted) return new EngineError('ENGINE_CANCELLED', 'whisperx call cancelled', this.id, { cause: err });
    if (timeout.aborted) {
      return new EngineError('ENGINE_TIMEOUT', `whisperx did not answer within WHISPERX_TIMEOUT (${this.config.WHISPERX_TIMEOUT} s)`, this.id, {
        details: { timeout_sec: this.config.WHISPERX_TIMEOUT, url: this.baseUrl },
        cause: err,
      });
    }
    const fields = errorFields(err);
    if (fields.code === 'ENOENT' || fields.code === 'EACCES' || fields.code === 'EISDIR') {
      // The gateway's own WAV is gone: a local fault, not the server's; another attempt re-decodes it.
      return new EngineError('ENGINE_INTERNAL', 'the audio file to send to whisperx cannot be read', this.id, {
        details: { path: file, error: fields.message },
        cause: err,
      });
    }
    if (isRedirectRefusal(err)) {
      return new EngineError('ENGINE_BAD_RESPONSE', 'whisperx answered with a redirect; WHISPERX_SERVICE_URL must be the final address of the server', this.id, {
        details: { url: this.baseUrl, error: fields.message },
        cause: err,
      });
    }
    const code = networkCode(err);
    return new EngineError('ENGINE_UNAVAILABLE', `whisperx cannot be reached (${code ?? 'network error'})`, this.id, {
      details: { url: this.baseUrl, error: fields.message, ...(code ? { network_code: code } : {}) },
      cause: err,
    });
  }
}
