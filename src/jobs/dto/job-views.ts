import type { Segment } from '../../engines/engine.spec.js';
import type { JobStage, JobStatus } from '../../transcription/job-catalog.js';

/** `GET /api/transcribe/jobs/status/:job_id` and every SSE event of `GET /stream/:job_id`. */
export interface JobStatusView {
  job_id: string;
  status: JobStatus;
  /** 0..100. */
  progress: number;
  stage: JobStage;
  transcript_id: string;
  engine: string;
  /** `host:pid` of the worker that ran (or runs) the job; null while queued. */
  worker_id: string | null;
  message: string;
  /** Pieces (chunks × channels) transcribed so far and in total, when the recording was split. */
  chunks_done?: number;
  chunks_total?: number;
  /**
   * Present once completed. `duration` in seconds; `warnings` only when the intake found a
   * problem with the recording (one shorter than its header claims), while Redis still holds the job.
   */
  result?: { segments_count: number; duration: number; warnings?: string[] };
  /** Present once failed: the last error (code, message, retryable, attempt). */
  error?: Record<string, unknown>;
}

/** `GET /api/transcribe/jobs/result/:job_id`. All times are float seconds. */
export interface JobResultView {
  job_id: string;
  transcript_id: string;
  status: 'completed';
  filename: string;
  /** Where the uploaded audio can be fetched (a presigned URL, or this API's audio endpoint); null once deleted by retention. */
  audio_url: string | null;
  language: string | null;
  /** Seconds. */
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
