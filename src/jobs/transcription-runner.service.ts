import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import os from 'node:os';
import type { Repository } from 'typeorm';
import { AudioError } from '../audio/audio.errors.js';
import { AudioService } from '../audio/audio.service.js';
import { EngineError } from '../engines/engine.error.js';
import { EngineRegistry, UnknownEngineError } from '../engines/engine-registry.js';
import { STORAGE_DRIVER, StorageNotFoundError, type StorageDriver } from '../storage/storage.driver.js';
import { TempWorkspaceService } from '../storage/temp-workspace.service.js';
import { TranscriptsService } from '../transcripts/transcripts.service.js';
import type { JobProgress, TranscribeJobData, TranscribeJobResult } from './jobs.constants.js';
import { TranscriptJobEntity } from './transcript-job.entity.js';

/** `host:pid`: identifies the worker process in transcript_jobs.worker_id and in progress events. */
export const WORKER_ID = `${os.hostname()}:${process.pid}`;

/** One attempt of a transcription job, as the runner sees it (decoupled from BullMQ's Job class). */
export interface JobAttempt {
  jobId: string;
  data: TranscribeJobData;
  /** 1-based number of this attempt. */
  attempt: number;
  /** Attempts allowed in total. */
  maxAttempts: number;
  signal: AbortSignal;
  reportProgress(progress: JobProgress): Promise<void>;
}

/** Raised by run() to tell the processor whether BullMQ may try again. */
export class JobAttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly details: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'JobAttemptError';
  }
}

/** Maps any failure to the error_details JSON and the retry decision. */
function describeFailure(err: unknown): { message: string; retryable: boolean; details: Record<string, unknown> } {
  if (err instanceof EngineError) return { message: err.message, retryable: err.retryable, details: err.toJSON() };
  if (err instanceof AudioError) return { message: err.message, retryable: false, details: { code: err.code, message: err.message, ...err.details } };
  if (err instanceof UnknownEngineError) return { message: err.message, retryable: false, details: { code: 'ENGINE_NOT_CONFIGURED', message: err.message } };
  if (err instanceof StorageNotFoundError) return { message: `the uploaded audio is gone from storage (${err.key})`, retryable: false, details: { code: 'AUDIO_MISSING', key: err.key } };
  const message = err instanceof Error ? err.message : String(err);
  // Anything else (database, filesystem, Redis hiccups) may pass: let BullMQ retry with backoff.
  return { message, retryable: true, details: { code: 'INTERNAL', message } };
}

/**
 * Runs one attempt of a transcription job on a worker: fetch the audio from storage, decode it to
 * 16 kHz mono, call the engine, save the normalized result — keeping transcript_jobs (worker_id,
 * attempts, started_at, completed_at, error_details) and the transcript's status up to date.
 *
 * Progress mapping: 0–5 intake, 10–90 engine, 90–100 saving.
 */
@Injectable()
export class TranscriptionRunner {
  private readonly logger = new Logger(TranscriptionRunner.name);

  constructor(
    private readonly engines: EngineRegistry,
    private readonly audio: AudioService,
    private readonly transcripts: TranscriptsService,
    private readonly workspaces: TempWorkspaceService,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    @InjectRepository(TranscriptJobEntity) private readonly jobs: Repository<TranscriptJobEntity>,
  ) {}

  /**
   * @returns the summary BullMQ stores as the job's return value.
   * @throws JobAttemptError with `retryable` deciding whether BullMQ tries again.
   */
  async run(attempt: JobAttempt): Promise<TranscribeJobResult> {
    const { jobId, data } = attempt;
    const started = Date.now();
    await this.jobs
      .createQueryBuilder()
      .update()
      .set({ workerId: WORKER_ID, attempts: attempt.attempt, startedAt: () => 'COALESCE(started_at, now())' })
      .where('job_id = :jobId', { jobId })
      .execute();
    await this.transcripts.setStatus(data.transcriptId, 'processing');
    const progress = (p: Omit<JobProgress, 'worker_id'>) => attempt.reportProgress({ ...p, worker_id: WORKER_ID });
    await progress({ progress: 0, stage: 'intake', message: 'fetching audio' });

    const workspace = await this.workspaces.create(jobId);
    try {
      const engine = this.engines.get(data.engine);
      const input = workspace.file('input');
      await this.storage.download(data.audioKey, input);
      await progress({ progress: 2, stage: 'intake', message: 'decoding to 16 kHz mono' });
      const normalized = await this.audio.normalize(input, workspace.file('audio.wav'), attempt.signal);
      await progress({ progress: 10, stage: 'transcribing', message: `transcribing with ${engine.id}` });

      let lastReported = 10;
      const result = await engine.transcribe(
        { path: normalized.path, duration_sec: normalized.duration_sec, max_volume_db: normalized.max_volume_db },
        data.options,
        {
          signal: attempt.signal,
          onProgress: ({ fraction, stage }) => {
            const pct = Math.floor(10 + 80 * Math.min(1, Math.max(0, fraction)));
            // Whole percents only: engines may report per word, SSE clients need far less.
            if (pct > lastReported) {
              lastReported = pct;
              void progress({ progress: pct, stage: 'transcribing', message: stage ?? `transcribing with ${engine.id}` }).catch(() => undefined);
            }
          },
        },
      );
      await progress({ progress: 90, stage: 'saving', message: 'saving transcript' });
      const processingSec = (Date.now() - started) / 1000;
      await this.jobs.manager.transaction(async (manager) => {
        await this.transcripts.saveResult(data.transcriptId, result, {
          processing_sec: processingSec,
          rtf: normalized.duration_sec > 0 ? processingSec / normalized.duration_sec : undefined,
        }, manager);
        await manager.getRepository(TranscriptJobEntity).update({ jobId }, { completedAt: new Date(), errorDetails: null });
      });
      this.logger.log(`job ${jobId} completed by ${engine.id}: ${result.segments.length} segments, ${normalized.duration_sec.toFixed(1)} s audio in ${processingSec.toFixed(1)} s`);
      return { segments_count: result.segments.length, duration: result.duration_sec };
    } catch (err) {
      const failure = describeFailure(err);
      const final = !failure.retryable || attempt.attempt >= attempt.maxAttempts;
      const details = { ...failure.details, attempt: attempt.attempt, final, at: new Date().toISOString() };
      await this.jobs.update({ jobId }, { errorDetails: details, ...(final ? { completedAt: new Date() } : {}) });
      await this.transcripts.setStatus(data.transcriptId, final ? 'failed' : 'queued');
      this.logger.warn(`job ${jobId} attempt ${attempt.attempt}/${attempt.maxAttempts} failed (${final ? 'final' : 'will retry'}): ${failure.message}`);
      throw new JobAttemptError(failure.message, failure.retryable, details);
    } finally {
      await workspace.dispose();
    }
  }
}
