import { GatewayError, type ErrorRecord } from '../common/gateway-error.js';
import { UnknownEngineError } from '../engines/engine-registry.js';
import { StorageNotFoundError } from '../storage/storage.driver.js';

/** How a failed attempt is recorded and whether BullMQ may try again. */
export interface Failure {
  /** Public message (what the user reads in status, SSE and webhooks). */
  message: string;
  retryable: boolean;
  /** The `error_details` record: public fields, and private ones under `internal`. */
  record: ErrorRecord;
}

/** A job aborted through its signal (DELETE, or worker shutdown) is never retried. */
export const CANCELLED: Failure = {
  message: 'the job was cancelled',
  retryable: false,
  record: { code: 'JOB_CANCELLED', message: 'the job was cancelled', retryable: false },
};

/**
 * The one classification of pipeline failures. Coded errors (GatewayError: engines, audio,
 * storage…) carry their own `retryable`; an engine this worker does not have, and audio gone from
 * storage, are final; anything else (database, filesystem, Redis hiccups) may pass, so BullMQ
 * retries it with backoff. Internal messages of unexpected errors stay under `internal`.
 */
export function classifyFailure(err: unknown, aborted: boolean): Failure {
  if (aborted) return CANCELLED;
  if (err instanceof UnknownEngineError) {
    const message = `engine ${err.requested} is not configured on the worker that took this job`;
    return { message, retryable: false, record: { code: 'ENGINE_NOT_CONFIGURED', message, retryable: false, engine: err.requested } };
  }
  if (err instanceof StorageNotFoundError) {
    const message = 'the audio of this job is no longer in storage';
    return { message, retryable: false, record: { code: 'AUDIO_MISSING', message, retryable: false, internal: { key: err.key } } };
  }
  if (err instanceof GatewayError) return { message: err.message, retryable: err.retryable, record: err.toRecord() };
  const internal = err instanceof Error ? err.message : String(err);
  const message = 'an internal error interrupted the transcription; it is retried';
  return { message, retryable: true, record: { code: 'INTERNAL', message, retryable: true, internal: { message: internal } } };
}

/**
 * Raised by the pipeline once a failed attempt is recorded, carrying only the public message (it
 * becomes BullMQ's failedReason, which status shows). Its BullMQ processor turns a non-retryable
 * one into UnrecoverableError, so no further attempt runs.
 */
export class AttemptFailure extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'AttemptFailure';
  }
}
