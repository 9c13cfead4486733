import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { EntityManager, Repository } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import type { TranscriptionResult } from '../engines/engine.spec.js';
import type { TranscriptMetadata } from '../transcripts/transcript.entity.js';
import { TranscriptsService, type NewTranscript } from '../transcripts/transcripts.service.js';
import { TranscriptJobEntity } from './transcript-job.entity.js';

/** The job row written at submission, next to its transcript. */
export interface NewJobRow {
  jobId: string;
  /** Canonical engine id; stored as text, checked by the application (EngineRegistry). */
  engine: string;
  /** Request options as given to the engine, for the record. */
  engineParams: Record<string, unknown>;
  callbackUrl: string | null;
  maxRetries: number;
}

/** A job row with its transcript. */
export type JobWithTranscript = TranscriptJobEntity & { transcript: NonNullable<TranscriptJobEntity['transcript']> };

/** What a completion write found. */
export type CompletionOutcome =
  /** This write completed the job. */
  | { kind: 'completed'; callbackUrl: string | null; processingSec: number }
  /** An earlier run already saved the result (its worker died before BullMQ heard). */
  | { kind: 'already-completed'; callbackUrl: string | null; segmentsCount: number; durationSec: number; text: string }
  /** The job ended otherwise meanwhile (cancelled by DELETE, or failed for good). */
  | { kind: 'ended' };

/** What a failure write did. */
export interface FailureOutcome {
  /** False when the job had already ended (its first final error, or a cancellation, is kept). */
  recorded: boolean;
  callbackUrl: string | null;
}

/**
 * The one writer of job state: every status write to `transcript_jobs` and `transcripts` goes
 * through here, each as one transaction, and every write that ends a job is guarded by
 * `completed_at IS NULL`, so a job ends exactly once whichever of completion, final failure and
 * cancellation comes first.
 *
 * State transitions (transcripts.status): queued → processing (attempt started) → completed
 * (result saved) | failed (final failure or cancellation); a retryable failure keeps processing.
 */
@Injectable()
export class JobRepository {
  constructor(
    @InjectRepository(TranscriptJobEntity) private readonly jobs: Repository<TranscriptJobEntity>,
    private readonly transcripts: TranscriptsService,
  ) {}

  /**
   * Inserts the `queued` transcript and its job row in one statement: a data-modifying CTE is
   * one transaction and one round trip to Postgres (no BEGIN/COMMIT, no SELECT-before-INSERT of
   * an entity save); the foreign key is checked at the end of the statement, when both rows exist.
   * Columns as in migrations/1763780000000-InitialSchema.ts; both rows' other columns take their defaults.
   * @throws the driver's error (nothing is written then)
   */
  async create(transcript: NewTranscript, job: NewJobRow): Promise<void> {
    await this.jobs.manager.query(
      `WITH transcript AS (
         INSERT INTO transcripts (id, session_id, filename, audio_key, mime_type, size_bytes, duration_sec, language, status, metadata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9::jsonb)
         RETURNING id
       )
       INSERT INTO transcript_jobs (transcript_id, job_id, engine, engine_params, callback_url, attempts, max_retries)
       SELECT id, $10, $11, $12::jsonb, $13, 0, $14 FROM transcript`,
      [
        transcript.id, transcript.sessionId, transcript.filename, transcript.audioKey, transcript.mimeType, transcript.sizeBytes, transcript.durationSec, transcript.language,
        JSON.stringify(transcript.metadata),
        job.jobId, job.engine, JSON.stringify(job.engineParams), job.callbackUrl, job.maxRetries,
      ],
    );
  }

  /** Deletes a job row and its transcript (a rolled-back submission, or DELETE of a finished job). */
  async delete(transcriptId: string): Promise<void> {
    await this.jobs.manager.transaction(async (manager) => {
      await manager.getRepository(TranscriptJobEntity).delete({ transcriptId });
      await this.transcripts.delete(transcriptId, manager);
    });
  }

  /** The job row and its transcript, or null for an unknown job id. */
  async find(jobId: string): Promise<JobWithTranscript | null> {
    const row = await this.jobs.findOne({ where: { jobId }, relations: { transcript: true } });
    return row?.transcript ? (row as JobWithTranscript) : null;
  }

  /**
   * Of `jobIds`, those whose job has not ended: a row with `completed_at IS NULL` (queued or
   * processing). Ended jobs and ids without a row are left out.
   */
  async openJobIds(jobIds: string[]): Promise<Set<string>> {
    if (jobIds.length === 0) return new Set();
    const rows = await this.jobs.manager.query<{ job_id: string }[]>('SELECT job_id FROM transcript_jobs WHERE job_id = ANY($1::varchar[]) AND completed_at IS NULL', [jobIds]);
    return new Set(rows.map((r) => r.job_id));
  }

  /** The recorded failure of a job (`error_details`, private part included), or null. */
  async errorDetails(jobId: string): Promise<Record<string, unknown> | null> {
    const row = await this.jobs.findOne({ where: { jobId }, select: { id: true, errorDetails: true } });
    return row?.errorDetails ?? null;
  }

  /** An attempt began: records the worker and attempt number, the first start time, and sets the transcript `processing`. */
  async markAttemptStarted(jobId: string, transcriptId: string, workerId: string, attempt: number): Promise<void> {
    await this.jobs.manager.transaction(async (manager) => {
      await manager
        .getRepository(TranscriptJobEntity)
        .createQueryBuilder()
        .update()
        .set({ workerId, attempts: attempt, startedAt: () => 'COALESCE(started_at, now())' })
        .where('job_id = :jobId', { jobId })
        .execute();
      await this.transcripts.setStatus(transcriptId, 'processing', manager);
    });
  }

  /** Records the worker that runs a later step (the merge may run on another worker than the split). */
  async markWorker(jobId: string, workerId: string): Promise<void> {
    await this.jobs.update({ jobId }, { workerId });
  }

  /**
   * Saves a result and ends the job, unless it already ended.
   * @param processingSec seconds the work took; omitted: since the first attempt started.
   */
  async complete(
    jobId: string,
    transcriptId: string,
    save: { result: TranscriptionResult; metadata: TranscriptMetadata; speakerRoles: Record<string, string> | null; processingSec?: number },
  ): Promise<CompletionOutcome> {
    const outcome = await this.jobs.manager.transaction(async (manager): Promise<CompletionOutcome | null> => {
      const row = await this.claim(manager, jobId, { completedAt: () => 'now()', errorDetails: null });
      if (!row) return null;
      const processingSec = save.processingSec ?? (row.startedAt && row.completedAt ? (row.completedAt.getTime() - row.startedAt.getTime()) / 1000 : 0);
      const metadata = { ...save.metadata, processing_sec: processingSec, rtf: save.result.duration_sec > 0 ? processingSec / save.result.duration_sec : undefined };
      await this.transcripts.saveResult(transcriptId, save.result, metadata, manager, save.speakerRoles);
      return { kind: 'completed', callbackUrl: row.callbackUrl, processingSec };
    });
    if (outcome) return outcome;
    const [current, row] = await Promise.all([
      this.transcripts.findById(transcriptId),
      this.jobs.findOne({ where: { jobId }, select: { id: true, callbackUrl: true } }),
    ]);
    if (current?.status !== 'completed') return { kind: 'ended' };
    return { kind: 'already-completed', callbackUrl: row?.callbackUrl ?? null, segmentsCount: current.segments?.length ?? 0, durationSec: current.durationSec ?? 0, text: current.text ?? '' };
  }

  /**
   * Records a failed attempt. A final failure ends the job (transcript `failed`); a retryable one
   * keeps it `processing`. Once a job has ended, later failures are ignored: when one chunk fails
   * for good, its siblings' follow-up errors must not hide the cause.
   */
  async recordFailure(jobId: string, transcriptId: string, details: Record<string, unknown>, final: boolean): Promise<FailureOutcome> {
    return this.jobs.manager.transaction(async (manager) => {
      const row = await this.claim(manager, jobId, final ? { errorDetails: details as QueryDeepPartialEntity<Record<string, unknown>>, completedAt: () => 'now()' } : { errorDetails: details as QueryDeepPartialEntity<Record<string, unknown>> });
      if (!row) return { recorded: false, callbackUrl: null };
      await this.transcripts.setStatus(transcriptId, final ? 'failed' : 'processing', manager);
      return { recorded: true, callbackUrl: row.callbackUrl };
    });
  }

  /**
   * Ends a queued or running job as cancelled: `error_details` says JOB_CANCELLED, the transcript
   * is `failed`. @returns false when the job had already ended.
   */
  async cancel(jobId: string, transcriptId: string, details: Record<string, unknown>): Promise<boolean> {
    return this.jobs.manager.transaction(async (manager) => {
      const row = await this.claim(manager, jobId, { errorDetails: details as QueryDeepPartialEntity<Record<string, unknown>>, completedAt: () => 'now()' });
      if (!row) return false;
      await this.transcripts.setStatus(transcriptId, 'failed', manager);
      return true;
    });
  }

  /** Updates the job row only while it has not ended; returns the updated row, or null. */
  private async claim(
    manager: EntityManager,
    jobId: string,
    patch: QueryDeepPartialEntity<TranscriptJobEntity>,
  ): Promise<Pick<TranscriptJobEntity, 'callbackUrl' | 'startedAt' | 'completedAt'> | null> {
    const result = await manager
      .getRepository(TranscriptJobEntity)
      .createQueryBuilder()
      .update()
      .set(patch)
      .where('job_id = :jobId AND completed_at IS NULL', { jobId })
      .returning(['callbackUrl', 'startedAt', 'completedAt'])
      .execute();
    if (!result.affected) return null;
    const raw = (result.raw as { callback_url: string | null; started_at: Date | null; completed_at: Date | null }[])[0];
    return { callbackUrl: raw?.callback_url ?? null, startedAt: raw?.started_at ?? null, completedAt: raw?.completed_at ?? null };
  }
}
