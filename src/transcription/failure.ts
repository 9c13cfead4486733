import { clockTime } from '../common/clock-time.js';
import { GatewayError, type ErrorRecord } from '../common/gateway-error.js';
import { UnknownEngineError } from '../engines/engine-registry.js';
import { StorageNotFoundError } from '../storage/storage.driver.js';
import type { ChunkJobData } from './job-catalog.js';

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

/** Where a chunk of a split job lies, for telling the user which part of the recording failed. */
export interface ChunkPlace {
  /** 0-based index of the piece (chunk × channel). */
  index: number;
  /** Pieces of the whole job. */
  total: number;
  /** Part of the recording the piece holds, seconds from its start. */
  startSec: number;
  endSec: number;
  /** 0-based channel of a multichannel job, null for the (downmixed) recording. */
  channel: number | null;
}

/** The place of a chunk job's piece in the recording (speech-only chunks: first to last span). */
export function chunkPlace(data: Pick<ChunkJobData, 'piece' | 'speechChunk' | 'durationSec' | 'total'>): ChunkPlace {
  const spans = data.speechChunk?.spans ?? [];
  const startSec = spans.length ? spans[0].start : data.piece.offset;
  const endSec = spans.length ? spans[spans.length - 1].end : data.piece.offset + data.durationSec;
  return { index: data.piece.index, total: data.total, startSec, endSec, channel: data.piece.channel };
}

/** `chunk 6 of 10 (recording 5:00–6:00)`, with `, channel 2` for a multichannel piece (1-based). */
export function describeChunk(place: ChunkPlace): string {
  const channel = place.channel !== null ? `, channel ${place.channel + 1}` : '';
  return `chunk ${place.index + 1} of ${place.total} (recording ${clockTime(place.startSec)}–${clockTime(place.endSec)}${channel})`;
}

/**
 * A chunk's failure in the user's words: `chunk 6 of 10 (recording 5:00–6:00) failed: <reason>`;
 * the record gains the chunk's times (seconds) as public fields.
 */
export function chunkFailure(failure: Failure, place: ChunkPlace): Failure {
  const message = `${describeChunk(place)} failed: ${failure.message}`;
  return {
    ...failure,
    message,
    record: { ...failure.record, message, chunk_start_sec: round3(place.startSec), chunk_end_sec: round3(place.endSec) },
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * BullMQ's own failure reasons, which name internal queue keys (`child gateway:chunks-pocketsphinx:<id>-p5
 * failed`) or worker internals, in the user's words; any other reason (the pipeline's public
 * messages) as it is. For status views that have no recorded failure to show.
 */
export function publicFailedReason(reason: string | null | undefined): string {
  if (!reason) return 'unknown error';
  const child = /^child \S*?-p(\d+) failed$/.exec(reason.trim());
  if (child) return `chunk ${Number(child[1]) + 1} of the recording failed`;
  if (/^child .* failed$/.test(reason.trim())) return 'a chunk of the recording failed';
  if (/stalled more than allowable limit/i.test(reason)) return 'the worker running it stopped responding too many times';
  if (/^(missing lock|lock mismatch)/i.test(reason)) return 'the worker running it lost the job';
  return reason;
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
