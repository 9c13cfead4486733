/**
 * The one error type engines raise. Adapters translate their protocol's failures (HTTP status,
 * gRPC status, process exit codes) into an EngineError at the adapter edge; the job processor
 * decides retry vs fail from `retryable` alone.
 */
export type EngineErrorCode =
  /** The engine could not be reached (connection refused, DNS, TLS). */
  | 'ENGINE_UNAVAILABLE'
  /** The call took longer than its deadline. */
  | 'ENGINE_TIMEOUT'
  /** The engine is overloaded or rate-limits us (HTTP 429, gRPC RESOURCE_EXHAUSTED). */
  | 'ENGINE_OVERLOADED'
  /** The engine rejected the request as invalid (HTTP 4xx, gRPC INVALID_ARGUMENT). */
  | 'ENGINE_REJECTED'
  /** The engine refused our credentials. */
  | 'ENGINE_UNAUTHORIZED'
  /** The engine answered with something the adapter cannot parse. */
  | 'ENGINE_BAD_RESPONSE'
  /** The engine produced no output on audio that is not silent. */
  | 'ENGINE_EMPTY_OUTPUT'
  /** The engine failed internally (HTTP 5xx, non-zero exit). */
  | 'ENGINE_INTERNAL'
  /** The call was cancelled through the AbortSignal. */
  | 'ENGINE_CANCELLED';

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    /** Whether the same call may succeed if tried again later. */
    readonly retryable: boolean,
    /** Which engine raised it. */
    readonly engineId: string,
    /** Protocol details safe to store in `transcript_jobs.error_details` (status codes, bodies). */
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EngineError';
  }

  /** JSON shape stored in `transcript_jobs.error_details`. */
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, retryable: this.retryable, engine: this.engineId, ...this.details };
  }
}

/** True for errors that indicate an abort (DOM AbortError or our own cancelled code). */
export function isAbortError(err: unknown): boolean {
  return (
    (err instanceof EngineError && err.code === 'ENGINE_CANCELLED') ||
    (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError'))
  );
}
