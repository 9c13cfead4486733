import { GatewayError } from '../common/gateway-error.js';

/**
 * Errors of the engines module.
 *
 * - EngineError: an engine call failed. Adapters translate their protocol's failures (HTTP
 *   status, gRPC status, process exit codes) into one at the adapter edge; the job processor
 *   decides retry vs fail from `retryable` alone.
 * - UnknownEngineError: a request named an engine that is not registered.
 * - EngineOptionError: a request asked an engine for a model, language or task it does not offer.
 */
export type EngineErrorCode =
  /** The engine could not be reached (connection refused, DNS, TLS), or it says it cannot serve now (HTTP 502/503). */
  | 'ENGINE_UNAVAILABLE'
  /** The call took longer than its deadline (or the engine said so: HTTP 408/504, gRPC DEADLINE_EXCEEDED). */
  | 'ENGINE_TIMEOUT'
  /** The engine is overloaded or rate-limits us (HTTP 429, gRPC RESOURCE_EXHAUSTED). */
  | 'ENGINE_OVERLOADED'
  /** The engine rejected the request as invalid (HTTP 4xx, gRPC INVALID_ARGUMENT), or the adapter refused to send it. */
  | 'ENGINE_REJECTED'
  /** The engine refused the gateway's credentials (the gateway's configuration, not the caller's key). */
  | 'ENGINE_UNAUTHORIZED'
  /** The engine answered with something the adapter cannot parse. */
  | 'ENGINE_BAD_RESPONSE'
  /** The engine produced no output on audio that is not silent. */
  | 'ENGINE_EMPTY_OUTPUT'
  /** The engine failed internally (HTTP 409/5xx, gRPC INTERNAL, non-zero exit), or the gateway could not read the audio to send. */
  | 'ENGINE_INTERNAL'
  /** The call was cancelled through the AbortSignal (job cancelled, worker shutting down). */
  | 'ENGINE_CANCELLED';

/**
 * The one table of engine failures: the HTTP status the API answers with when a failure is
 * surfaced synchronously (the OpenAI-compatible route waits for its job), and whether the job is
 * tried again. `retryable` is decided by the code alone, so no adapter can disagree with another:
 * an adapter only chooses the code.
 *
 * The retry rule is the Vercel AI SDK's `APICallError.isRetryable` (and the OpenAI SDKs'):
 * whatever may pass on a later try — unreachable, slow, overloaded, a failure inside the engine,
 * an unusable body (usually a proxy's error page or a cut connection) — is retried, bounded by
 * JOB_MAX_RETRIES; what will fail the same way again (a request the engine refuses, wrong
 * credentials, no output on audible audio, a cancellation) is not. Statuses are 5xx because
 * the caller's request was acceptable and the fault lies between the gateway and its engine:
 * 502 when the engine answered but unusably, 503 when it cannot serve now, 504 on a timeout.
 * A cancelled call answers 409: the job was cancelled while the engine ran.
 */
export const ENGINE_ERRORS: Readonly<Record<EngineErrorCode, { status: number; retryable: boolean }>> = {
  ENGINE_UNAVAILABLE: { status: 503, retryable: true },
  ENGINE_TIMEOUT: { status: 504, retryable: true },
  ENGINE_OVERLOADED: { status: 503, retryable: true },
  ENGINE_INTERNAL: { status: 502, retryable: true },
  ENGINE_BAD_RESPONSE: { status: 502, retryable: true },
  ENGINE_REJECTED: { status: 502, retryable: false },
  ENGINE_UNAUTHORIZED: { status: 502, retryable: false },
  ENGINE_EMPTY_OUTPUT: { status: 502, retryable: false },
  ENGINE_CANCELLED: { status: 409, retryable: false },
};

/**
 * The engine error code of a non-2xx HTTP answer from an engine, for every HTTP adapter.
 * Retryable exactly when the status is 408, 409, 429 or 5xx (APICallError.isRetryable):
 * 401/403 → UNAUTHORIZED; 408, 504 → TIMEOUT; 429 → OVERLOADED; 502, 503 (a proxy without its
 * upstream, a model still loading, a GPU out of memory) → UNAVAILABLE; 409 and other 5xx →
 * INTERNAL; other 4xx → REJECTED; anything else (1xx, 3xx: not a transcription) → BAD_RESPONSE.
 */
export function engineCodeForHttpStatus(status: number): EngineErrorCode {
  if (status === 401 || status === 403) return 'ENGINE_UNAUTHORIZED';
  if (status === 408 || status === 504) return 'ENGINE_TIMEOUT';
  if (status === 429) return 'ENGINE_OVERLOADED';
  if (status === 502 || status === 503) return 'ENGINE_UNAVAILABLE';
  if (status === 409 || (status >= 500 && status <= 599)) return 'ENGINE_INTERNAL';
  if (status >= 400 && status <= 499) return 'ENGINE_REJECTED';
  return 'ENGINE_BAD_RESPONSE';
}

export interface EngineErrorOptions {
  /**
   * What the engine answered, when it answered: the HTTP status (number) or the gRPC status name
   * (`UNAVAILABLE`). Public, as `upstream_status`.
   */
  upstreamStatus?: number | string;
  /**
   * Private diagnostics: engine URLs, hosts, file paths, raw upstream bodies and messages,
   * network error texts. They go to logs and `error_details.internal`, never to clients.
   */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * A failed engine call. Public (`toPublic()`, `toJSON()`): `code`, `message`, `engine` and,
 * when the engine answered, `upstream_status`. Everything else is in `details`.
 *
 * The message says what went wrong in the gateway's own words; it never quotes the engine's
 * answer, URL, host or the audio's path (put those in `details`).
 */
export class EngineError extends GatewayError {
  readonly code: EngineErrorCode;

  /**
   * @param code decides the HTTP status and `retryable` (ENGINE_ERRORS).
   * @param message public message, e.g. `whisperx answered HTTP 503`.
   * @param engineId the engine that failed (public, as `engine`).
   */
  constructor(
    code: EngineErrorCode,
    message: string,
    readonly engineId: string,
    options: EngineErrorOptions = {},
  ) {
    super(message, {
      status: ENGINE_ERRORS[code].status,
      retryable: ENGINE_ERRORS[code].retryable,
      publicFields: { engine: engineId, ...(options.upstreamStatus !== undefined ? { upstream_status: options.upstreamStatus } : {}) },
      details: options.details,
      cause: options.cause,
    });
    this.code = code;
  }
}

/** Codes of the engines module's request errors (the caller named something the engines cannot do). */
export type EngineRequestErrorCode =
  /** No engine is registered under the requested name. */
  | 'UNKNOWN_ENGINE'
  /** The engine exists but does not offer the requested model or language. */
  | 'INVALID_OPTION';

/** HTTP status of each request error: the caller's mistake, 400. */
export const ENGINE_REQUEST_ERROR_STATUS: Readonly<Record<EngineRequestErrorCode, number>> = {
  UNKNOWN_ENGINE: 400,
  INVALID_OPTION: 400,
};

/**
 * Raised when a lookup names an engine that is not registered; the message and
 * `available_engines` list those that are.
 */
export class UnknownEngineError extends GatewayError {
  readonly code = 'UNKNOWN_ENGINE' as const;

  constructor(
    /** The name as the caller gave it. */
    readonly requested: string,
    /** Registered engine ids, in registration order. */
    readonly available: string[],
  ) {
    super(`Unknown engine '${requested}'. Available engines: ${available.join(', ') || '(none)'}.`, {
      status: ENGINE_REQUEST_ERROR_STATUS.UNKNOWN_ENGINE,
      publicFields: { available_engines: available },
    });
  }
}

/**
 * Raised at submit time when a model, language or task is not among an engine's capabilities
 * (see checkEngineOptions, checkEngineTask). Public fields: `engine`, `option` (`model`,
 * `language` or `task`) and the accepted values as `available_models`, `languages` or
 * `translation_engines`.
 */
export class EngineOptionError extends GatewayError {
  readonly code = 'INVALID_OPTION' as const;

  constructor(message: string, publicFields: Record<string, unknown>) {
    super(message, { status: ENGINE_REQUEST_ERROR_STATUS.INVALID_OPTION, publicFields });
  }
}

/** True for errors that indicate an abort (DOM AbortError or our own cancelled code). */
export function isAbortError(err: unknown): boolean {
  return (
    (err instanceof EngineError && err.code === 'ENGINE_CANCELLED') ||
    (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError'))
  );
}
