import type { TranscribeOptions, TranscriptionResult } from '../engines/engine.spec.js';
import type { SpeakerRolesRequest } from '../transcripts/speaker-roles.js';
import type { PiecePlacement } from './pipeline/merge.js';

/**
 * The typed job catalog: every queue, job name and payload the gateway puts on BullMQ.
 */
export enum QueueName {
  Transcription = 'transcription',
  /** Scheduled housekeeping (audio retention). */
  Maintenance = 'maintenance',
}

export enum TranscriptionJobName {
  /** One whole transcription: intake → engine (directly, or through chunk jobs) → save. */
  Transcribe = 'transcribe',
}

/** Storage prefix of a job's chunk objects (deleted once transcribed, and on failure or cancellation). */
export const chunkPrefix = (jobId: string) => `chunks/${jobId}/`;

/** Chunks of long or multichannel recordings go to one queue per engine, so each engine's concurrency is its own. */
export const chunkQueueName = (engineId: string) => `chunks-${engineId}`;

export enum ChunkJobName {
  /** One piece (a chunk of one channel) of a recording, a BullMQ child of its transcription job. */
  TranscribeChunk = 'transcribe-chunk',
}

/** Payload of TranscriptionJobName.Transcribe. */
export interface TranscribeJobData {
  transcriptId: string;
  /** Engine id (canonical, never an alias). */
  engine: string;
  /** Storage key of the uploaded audio. */
  audioKey: string;
  options: TranscribeOptions;
  /** Transcribe each channel on its own; words get speaker_tag = channel index. */
  multichannel?: boolean;
  /** Engines to fall back to, in order (ENGINE_FALLBACKS), after `engine` used up its attempts on retryable errors. */
  fallbacks?: string[];
  /** Attempts each engine of the chain gets (1 + JOB_MAX_RETRIES). */
  attemptsPerEngine?: number;
  /** Short non-reversible label of the submitting API key (metrics per key); never the key. */
  keyLabel?: string;
  /** Speaker-roles post-processing, applied to the final result. */
  speakerRoles?: SpeakerRolesRequest;
  /** Set by the job itself once it has split the audio: the next run merges the chunk results. */
  step?: 'merge';
  /** Pieces created by the split step (with their placement in the recording). */
  pieces?: PiecePlacement[];
  /** Seconds of the decoded recording (set by the split step). */
  durationSec?: number;
}

/** Payload of ChunkJobName.TranscribeChunk. */
export interface ChunkJobData {
  /** BullMQ id of the parent transcription job (its public job_id). */
  parentJobId: string;
  transcriptId: string;
  engine: string;
  /** Storage key of the piece's 16 kHz mono WAV (deleted once transcribed). */
  audioKey: string;
  piece: PiecePlacement;
  /** Seconds of the piece's audio. */
  durationSec: number;
  /** Peak level of the piece in dBFS. */
  maxVolumeDb: number | null;
  options: TranscribeOptions;
  /** Fallback chain and per-engine attempts, as for the parent job. */
  fallbacks?: string[];
  attemptsPerEngine?: number;
  /** Pieces in the whole job (for progress). */
  total: number;
}

/**
 * The engine an attempt runs on: each engine of [engine, ...fallbacks] gets `attemptsPerEngine`
 * attempts in turn (BullMQ counts attempts across the whole chain).
 * @param attempt 1-based attempt number.
 */
export function engineForAttempt(data: { engine: string; fallbacks?: string[]; attemptsPerEngine?: number }, attempt: number): string {
  const chain = [data.engine, ...(data.fallbacks ?? [])];
  const per = Math.max(1, data.attemptsPerEngine ?? Number.MAX_SAFE_INTEGER);
  return chain[Math.min(Math.floor((attempt - 1) / per), chain.length - 1)]!;
}

/** Return value of a chunk job: the engine's result in piece time (offsets are added at merge). */
export interface ChunkJobResult {
  index: number;
  result: TranscriptionResult;
}

/** Summary stored as the BullMQ return value and shown as `result` in the status response. */
export interface TranscribeJobResult {
  segments_count: number;
  /** Seconds. */
  duration: number;
}

/** Stages a job moves through; `progress` ranges per stage are documented in JobProgress. */
export const JOB_STAGES = ['queued', 'intake', 'splitting', 'transcribing', 'merging', 'saving', 'completed', 'failed'] as const;
export type JobStage = (typeof JOB_STAGES)[number];

/**
 * What a running job reports through BullMQ `updateProgress` (and SSE).
 * progress (seed 001's mapping): 0–5 intake (download + decode to 16 kHz mono), 5–10 splitting,
 * 10–90 transcribing (chunks done / total when chunked), 90–100 merging and saving.
 */
export interface JobProgress {
  /** 0..100. */
  progress: number;
  stage: JobStage;
  /** Pieces transcribed so far, when the recording was split (chunks × channels). */
  chunks_done?: number;
  chunks_total?: number;
  /** `host:pid` of the worker running the job. */
  worker_id?: string;
  message?: string;
}

/** Public job status (the status endpoint and every SSE event). */
export type JobStatus = 'queued' | 'processing' | 'completed' | 'failed';
