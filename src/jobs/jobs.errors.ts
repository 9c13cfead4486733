/** Failures of the jobs module's own rules; mapped to HTTP by ApiErrorFilter. */
export type JobErrorCode =
  /** No job with that id. */
  | 'JOB_NOT_FOUND'
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

export class JobError extends Error {
  constructor(
    readonly code: JobErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'JobError';
  }
}
