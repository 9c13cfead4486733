import { HttpStatus } from '@nestjs/common';
import { GatewayError } from '../common/gateway-error.js';

/** Failures of the job API's own rules. */
export type JobErrorCode =
  /** No job with that id. */
  | 'JOB_NOT_FOUND'
  /** The job was deleted (DELETE): its transcript, rows and audio are gone. */
  | 'JOB_DELETED'
  /** The job exists but its result is not available (queued, processing or failed). */
  | 'JOB_NOT_COMPLETED'
  /** The multipart request has no `file` part. */
  | 'FILE_REQUIRED'
  /** Options that are valid one by one but not together, or not for the chosen engine. */
  | 'INVALID_OPTION'
  /** The audio of a job was deleted (retention) or never stored. */
  | 'AUDIO_GONE'
  /** A Range header outside the audio. */
  | 'RANGE_NOT_SATISFIABLE';

/** HTTP status of every JobErrorCode. */
export const JOB_ERROR_STATUS: Record<JobErrorCode, number> = {
  JOB_NOT_FOUND: HttpStatus.NOT_FOUND,
  JOB_DELETED: HttpStatus.GONE,
  JOB_NOT_COMPLETED: HttpStatus.CONFLICT,
  FILE_REQUIRED: HttpStatus.BAD_REQUEST,
  INVALID_OPTION: HttpStatus.BAD_REQUEST,
  AUDIO_GONE: HttpStatus.GONE,
  RANGE_NOT_SATISFIABLE: HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
};

export class JobError extends GatewayError {
  /**
   * @param publicFields safe, machine-readable fields that join the error body (e.g. `status`,
   *   `available_models`).
   */
  constructor(
    readonly code: JobErrorCode,
    message: string,
    publicFields: Record<string, unknown> = {},
  ) {
    super(message, { status: JOB_ERROR_STATUS[code], publicFields });
  }
}
