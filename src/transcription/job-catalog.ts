import type { TranscribeOptions, TranscriptionResult } from '../engines/engine.spec.js';
import type { SpeakerRolesRequest } from '../transcripts/speaker-roles.js';
import type { SpeechRegion } from '../audio/vad.js';
import type { PiecePlacement } from './long-audio/merge.js';
import type { SpeechChunk } from './long-audio/speech-chunks.js';

/**
 * The typed job catalog: every queue the pipeline puts work on, the job names of each, and the
 * payload and return value of every job. Processors declare which (queue, job name) pairs they
 * handle; JobCatalogCheck fails the boot of a worker when a name has no handler or two.
 */
export enum QueueName {
  Transcription = 'transcription',
  /** Scheduled housekeeping (audio retention). */
  Maintenance = 'maintenance',
}

/** Chunks of long or multichannel recordings go to one queue per engine, so each engine's concurrency is its own. */
export const chunkQueueName = (engineId: string) => `chunks-${engineId}`;

export enum TranscriptionJobName {
  /** One whole transcription: intake → engine (directly, or through chunk jobs) → merge → save. */
  Transcribe = 'transcribe',
}

export enum ChunkJobName {
  /** One piece (a chunk of one channel) of a recording, a BullMQ child of its transcription job. */
  TranscribeChunk = 'transcribe-chunk',
}

export enum MaintenanceJobName {
  /** Deletes the audio of finished jobs older than AUDIO_RETENTION_HOURS. */
  AudioRetention = 'audio-retention',
}

/**
 * Queue → job name → payload. Chunk queues (`chunks-<engine>`) share one entry: every engine's
 * chunk queue carries the same job.
 */
export interface JobCatalog {
  [QueueName.Transcription]: { [TranscriptionJobName.Transcribe]: { data: TranscriptionJobData; result: TranscriptionJobResult } };
  chunks: { [ChunkJobName.TranscribeChunk]: { data: ChunkJobData; result: ChunkJobResult } };
  [QueueName.Maintenance]: { [MaintenanceJobName.AudioRetention]: { data: Record<string, never>; result: { deleted: number } } };
}

/** The job names of every catalog entry, for the boot check (kept in step with JobCatalog by its type). */
export const CATALOG_JOB_NAMES: { readonly [Q in keyof JobCatalog]: readonly (keyof JobCatalog[Q])[] } = {
  [QueueName.Transcription]: [TranscriptionJobName.Transcribe],
  chunks: [ChunkJobName.TranscribeChunk],
  [QueueName.Maintenance]: [MaintenanceJobName.AudioRetention],
};

/** Storage prefix of a job's chunk objects (deleted once transcribed, and on failure or cancellation). */
export const chunkPrefix = (jobId: string) => `chunks/${jobId}/`;

/** What every step of a transcription job carries: the request, fixed at submission. */
interface TranscriptionJobBase {
  transcriptId: string;
  /** Engine id (canonical, never an alias). */
  engine: string;
  /** Storage key of the uploaded audio. */
  audioKey: string;
  /**
   * What the engine is asked for. `options.task` (`transcribe` | `translate`; absent in payloads
   * queued before translation existed = transcribe) is fixed at submission and copied into every
   * chunk job, so each piece of a long recording is translated, never transcribed.
   */
  options: TranscribeOptions;
  /** Transcribe each channel on its own; words get speaker_tag = channel index. */
  multichannel: boolean;
  /**
   * `vad_filter`: send engines speech only (Silero VAD regions packed into chunks); false: the
   * whole recording, cut at pauses when long. Absent in payloads queued before it existed: true.
   */
  vadFilter?: boolean;
  /** Engines to fall back to, in order (ENGINE_FALLBACKS), after `engine` used up its attempts on retryable errors. */
  fallbacks?: string[];
  /** Attempts each engine of the chain gets (1 + JOB_MAX_RETRIES). */
  attemptsPerEngine?: number;
  /** Short non-reversible label of the submitting API key (metrics per key); never the key. */
  keyLabel?: string;
  /** Speaker-roles post-processing, applied to the final result. */
  speakerRoles?: SpeakerRolesRequest;
  /**
   * Seconds the container claimed at submission (header or ffprobe); the intake compares the
   * decoded length with it and warns when the recording turns out shorter (cut off).
   */
  claimedDurationSec?: number;
  /** Warnings of the intake (e.g. a truncated recording), carried to the merge step and added to the result. */
  intakeWarnings?: string[];
}

/** First step: intake, then one engine call (short audio) or split into chunk jobs (long or multichannel audio). */
export interface TranscribeStepData extends TranscriptionJobBase {
  step: 'transcribe';
}

/** Second step of a split recording, run once every chunk job is done: merge the chunk results and save. */
export interface MergeStepData extends TranscriptionJobBase {
  step: 'merge';
  /** Pieces created by the split (with their placement in the recording). */
  pieces: PiecePlacement[];
  /** Seconds of the decoded recording. */
  durationSec: number;
  /** The engine the chunks were sent to (the attempt's engine, after any fallback). */
  chunkEngine: string;
  /** Speech-only chunks (vad_filter on): their time maps; absent for pause-based pieces. */
  speechChunks?: SpeechChunk[];
  /** VAD speech regions of the recording, for the hallucination guard when engines heard non-speech (vad_filter off). */
  guardRegions?: SpeechRegion[];
  /** Seconds of speech the VAD found, and seconds of audio sent to the engine. */
  speechSec?: number;
  engineSec?: number;
}

/** Payload of TranscriptionJobName.Transcribe: a discriminated union on `step`. */
export type TranscriptionJobData = TranscribeStepData | MergeStepData;

/**
 * Reads a transcription job's payload as stored in Redis. Jobs queued before `step` existed are
 * first steps.
 * @throws Error when the payload is not a transcription job (a bug or a foreign producer).
 */
export function parseTranscriptionJobData(raw: unknown): TranscriptionJobData {
  const data = raw as Partial<TranscriptionJobData> | null;
  if (!data || typeof data !== 'object' || typeof data.transcriptId !== 'string' || typeof data.engine !== 'string' || typeof data.audioKey !== 'string') {
    throw new Error('not a transcription job payload (transcriptId, engine and audioKey are required)');
  }
  if (data.step === 'merge') {
    if (!Array.isArray(data.pieces) || typeof data.durationSec !== 'number') throw new Error('a merge step needs pieces and durationSec');
    return { ...data, chunkEngine: data.chunkEngine ?? data.engine } as MergeStepData;
  }
  return { ...data, multichannel: data.multichannel ?? false, options: data.options ?? {}, step: 'transcribe' } as TranscribeStepData;
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
  /** The speech-only chunk this piece is (its spans and time map), when vad_filter is on. */
  speechChunk?: SpeechChunk;
  /** Seconds of the piece's audio. */
  durationSec: number;
  /** Peak level of the piece in dBFS. */
  maxVolumeDb: number | null;
  /** The parent job's options, `task` included (a translation is translated piece by piece). */
  options: TranscribeOptions;
  /** Fallback chain and per-engine attempts, as for the parent job. */
  fallbacks?: string[];
  attemptsPerEngine?: number;
  /** Pieces in the whole job (for progress). */
  total: number;
  /** Label of the submitting API key (fair scheduling, backlog per key); absent in chunks queued before it existed. */
  keyLabel?: string;
}

/**
 * The engine an attempt runs on: each engine of [engine, ...fallbacks] gets `attemptsPerEngine`
 * attempts in turn (BullMQ counts attempts across the whole chain).
 * @param attempt 1-based attempt number.
 */
export function engineForAttempt(data: { engine: string; fallbacks?: string[]; attemptsPerEngine?: number }, attempt: number): string {
  const chain = [data.engine, ...(data.fallbacks ?? [])];
  const per = Math.max(1, data.attemptsPerEngine ?? Number.MAX_SAFE_INTEGER);
  return chain[Math.min(Math.floor((attempt - 1) / per), chain.length - 1)];
}

/** Return value of a chunk job: the engine's result in piece time (offsets are added at merge). */
export interface ChunkJobResult {
  index: number;
  result: TranscriptionResult;
}

/** Summary stored as the BullMQ return value and shown as `result` in the status response. */
export interface TranscriptionJobResult {
  segments_count: number;
  /** Seconds. */
  duration: number;
  /** Warnings of the intake, when there were any (a recording shorter than its header claims); also in the result's `warnings`. */
  warnings?: string[];
}

/** Stages a job moves through; `progress` ranges per stage are documented in JobProgress. */
export const JOB_STAGES = ['queued', 'intake', 'splitting', 'transcribing', 'merging', 'saving', 'completed', 'failed'] as const;
export type JobStage = (typeof JOB_STAGES)[number];

/**
 * What a running job reports through BullMQ `updateProgress` (and SSE).
 * progress: 0–5 intake (download + decode to 16 kHz mono), 5–10 splitting,
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
