/**
 * The one error model of the gateway. Every module's errors extend GatewayError, so one filter
 * (src/common/api-error.filter.ts) and one failure recorder map them without knowing the module.
 *
 * What goes where:
 * - `message`: the public message. It says what was wrong and what is accepted, in the user's
 *   words. It never names internal hosts, URLs, file paths, queue keys or stack traces.
 * - `publicFields`: machine-readable fields that are safe to show (`available_engines`,
 *   `max_file_size`, an upstream HTTP status…). They join the error body, job status, SSE,
 *   results and webhooks.
 * - `details`: private facts (engine URLs, temp paths, raw upstream bodies, causes). They go to
 *   logs and to `transcript_jobs.error_details` in Postgres, never to clients.
 */
export interface GatewayErrorOptions {
  /** HTTP status the API answers with. 4xx for the caller's mistakes, 5xx for ours. */
  status: number;
  /** Whether the same operation may succeed when tried again later (decides job retries). */
  retryable?: boolean;
  /** Safe, machine-readable fields for clients. */
  publicFields?: Record<string, unknown>;
  /** Private diagnostics: logs and `error_details` only. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** The fields of an error that clients may see: body of API errors, `error` of status/SSE/webhooks. */
export interface PublicError {
  code: string;
  message: string;
  [field: string]: unknown;
}

export abstract class GatewayError extends Error {
  /** Machine-readable code (e.g. AUDIO_UNREADABLE, ENGINE_TIMEOUT); each module types its own union. */
  abstract readonly code: string;
  readonly status: number;
  readonly retryable: boolean;
  readonly publicFields: Record<string, unknown>;
  readonly details: Record<string, unknown>;

  protected constructor(message: string, options: GatewayErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = options.status;
    this.retryable = options.retryable ?? false;
    this.publicFields = options.publicFields ?? {};
    this.details = options.details ?? {};
  }

  /** What a client may see: code, public message and safe fields. */
  toPublic(): PublicError {
    return { ...this.publicFields, code: this.code, message: this.message };
  }

  /**
   * What is recorded in `transcript_jobs.error_details` and logs: the public part, `retryable`,
   * and the private details under `internal` (which publicErrorOf strips again).
   */
  toRecord(): ErrorRecord {
    return { ...this.toPublic(), retryable: this.retryable, ...(Object.keys(this.details).length ? { internal: this.details } : {}) };
  }

  /** JSON of an error is its public part: an error that reaches a serializer by mistake leaks nothing. */
  toJSON(): PublicError {
    return this.toPublic();
  }
}

/** A failure as stored in `transcript_jobs.error_details`: public fields, plus private ones under `internal`. */
export interface ErrorRecord extends PublicError {
  retryable?: boolean;
  /** Private diagnostics (engine URLs, temp paths, upstream bodies): logs and Postgres only. */
  internal?: Record<string, unknown>;
}

/**
 * The part of a recorded failure (`error_details`) that clients may see: everything but
 * `internal`. Used by status, SSE, results and webhooks when they show a stored failure.
 */
export function publicErrorOf(record: Record<string, unknown> | null | undefined): Record<string, unknown> | undefined {
  if (!record) return undefined;
  const { internal: _internal, ...visible } = record;
  return visible;
}
