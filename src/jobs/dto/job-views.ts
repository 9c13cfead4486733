import type { EngineTask, Segment } from '../../engines/engine.spec.js';
import type { JobStage, JobStatus } from '../../transcription/job-catalog.js';
import type { QueuePosition } from '../../transcription/queue-backlog.js';

export { roundSeconds } from '../../common/seconds.js';

/**
 * Public status of a job: the pipeline's four, plus `cancelled` for a job ended by DELETE while
 * queued or running (stored as `failed` with error code JOB_CANCELLED).
 */
export type JobStatusValue = JobStatus | 'cancelled';

/** `GET /api/transcribe/jobs/status/:job_id` and every SSE event of `GET /stream/:job_id`. */
export interface JobStatusView {
  job_id: string;
  status: JobStatusValue;
  /** 0..100. */
  progress: number;
  stage: JobStage | 'cancelled';
  transcript_id: string;
  engine: string;
  /** What was asked: `transcribe`, or `translate` (English text from speech in any language). */
  task: EngineTask;
  /** `host:pid` of the worker that ran (or runs) the job; null while queued. */
  worker_id: string | null;
  message: string;
  /** Pieces (chunks × channels) transcribed so far and in total, when the recording was split. */
  chunks_done?: number;
  chunks_total?: number;
  /**
   * Present once completed. `duration` in seconds, 3 decimals; `warnings` only when the intake found a
   * problem with the recording (one shorter than its header claims), while Redis still holds the job.
   */
  result?: { segments_count: number; duration: number; warnings?: string[] };
  /** Present once failed or cancelled: the last error (code, message, retryable, attempt; JOB_CANCELLED when cancelled). */
  error?: Record<string, unknown>;
  /** SSE only, while the job waits: whole jobs (`jobs_ahead`) or other jobs' chunks (`chunks_ahead`) that run before it. */
  queue_position?: QueuePosition;
}

/** `GET /api/transcribe/jobs/result/:job_id`. All times are float seconds. */
export interface JobResultView {
  job_id: string;
  transcript_id: string;
  status: 'completed';
  filename: string;
  /** `transcribe`, or `translate`: `text` and `segments` are English, `language` is `en`. */
  task: EngineTask;
  /** Where the uploaded audio can be fetched (a presigned URL, or this API's audio endpoint); null once deleted by retention. */
  audio_url: string | null;
  language: string | null;
  /** Seconds of the recording, 3 decimals. */
  duration: number | null;
  text: string;
  segments: Segment[];
  speaker_roles: Record<string, string> | null;
  /** Engine that produced the result, its model, and warnings (options it ignored). */
  engine: string;
  model: string | null;
  warnings: string[];
  /** Seconds of speech the VAD found in the recording (null for multichannel jobs and jobs from before the VAD). */
  speech_seconds: number | null;
  /** Seconds of audio sent to the engine: speech plus short pauses standing in for non-speech, or the whole recording. */
  engine_seconds: number | null;
}

/**
 * The task recorded with a job (its options, in the queue payload or in `engine_params`); jobs
 * from before translation existed were transcriptions.
 */
export function taskOf(options: { task?: unknown } | null | undefined): EngineTask {
  return options?.task === 'translate' ? 'translate' : 'transcribe';
}
