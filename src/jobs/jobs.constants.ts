import type { TranscribeOptions } from '../engines/engine.spec.js';

/**
 * The typed job catalog: every queue, job name and payload the gateway puts on BullMQ.
 */
export enum QueueName {
  Transcription = 'transcription',
}

export enum TranscriptionJobName {
  /** One whole transcription: intake → engine → save. */
  Transcribe = 'transcribe',
}

/** Payload of TranscriptionJobName.Transcribe. */
export interface TranscribeJobData {
  transcriptId: string;
  /** Engine id (canonical, never an alias). */
  engine: string;
  /** Storage key of the uploaded audio. */
  audioKey: string;
  options: TranscribeOptions;
}

/** Summary stored as the BullMQ return value and shown as `result` in the status response. */
export interface TranscribeJobResult {
  segments_count: number;
  /** Seconds. */
  duration: number;
}

/** Stages a job moves through; `progress` ranges per stage are documented in JobProgress. */
export const JOB_STAGES = ['queued', 'intake', 'transcribing', 'saving', 'completed', 'failed'] as const;
export type JobStage = (typeof JOB_STAGES)[number];

/**
 * What a running job reports through BullMQ `updateProgress` (and SSE).
 * progress: 0–5 intake (download + decode to 16 kHz mono), 10–90 transcribing, 90–100 saving.
 */
export interface JobProgress {
  /** 0..100. */
  progress: number;
  stage: JobStage;
  /** `host:pid` of the worker running the job. */
  worker_id?: string;
  message?: string;
}

/** Public job status (the status endpoint and every SSE event). */
export type JobStatus = 'queued' | 'processing' | 'completed' | 'failed';
