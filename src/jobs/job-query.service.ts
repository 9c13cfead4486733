import { Inject, Injectable } from '@nestjs/common';
import parseRange from 'range-parser';
import type { Readable } from 'node:stream';
import { publicErrorOf } from '../common/gateway-error.js';
import { servedMediaType } from '../common/media-type.js';
import { AppConfig } from '../config/app-config.js';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage.driver.js';
import { publicFailedReason } from '../transcription/failure.js';
import type { JobProgress, JobStage, JobStatus } from '../transcription/job-catalog.js';
import { JobRepository } from '../transcription/job.repository.js';
import { TranscriptionQueue, type QueuedJobState } from '../transcription/transcription.queue.js';
import { roundSeconds, taskOf, type JobResultView, type JobStatusView } from './dto/job-views.js';
import { DeletedJobs } from './deleted-jobs.js';
import { JobError } from './jobs.errors.js';
import { intakeWarningsOf } from '../transcription/transcription.service.js';

const BULL_TO_STATUS: Record<string, JobStatus> = {
  waiting: 'queued',
  prioritized: 'queued',
  delayed: 'queued',
  paused: 'queued',
  active: 'processing',
  'waiting-children': 'processing',
  completed: 'completed',
  failed: 'failed',
};

/** Error code of a job ended by DELETE while queued or running (JobLifecycle.cancelled). */
const CANCELLED_CODE = 'JOB_CANCELLED';

/** The stored upload of a job, or a byte range of it. */
export interface AudioFile {
  stream: Readable;
  /** What the gateway detected (`servedMediaType`): `audio/*`, `video/*` or `application/octet-stream`. */
  mimeType: string;
  filename: string;
  /** Bytes of the whole file. */
  size: number;
  /** Inclusive byte range served, when the request asked for one. */
  partial?: { start: number; end: number };
}

/**
 * Reads jobs for the API: status (from Redis while BullMQ holds the job, from Postgres once
 * REDIS_JOB_TTL expired it), results and the stored audio. Failures are shown by their public
 * part only (`publicErrorOf`): internal details stay in `error_details`.
 */
@Injectable()
export class JobQueryService {
  constructor(
    private readonly config: AppConfig,
    private readonly queue: TranscriptionQueue,
    private readonly repository: JobRepository,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    private readonly deleted: DeletedJobs,
  ) {}

  /**
   * The error for an id with no row: 410 JOB_DELETED when DELETE removed it (within
   * DELETED_JOB_MEMORY_SEC), else 404 JOB_NOT_FOUND.
   */
  private async missing(jobId: string): Promise<JobError> {
    const at = await this.deleted.deletedAt(jobId);
    if (at) return new JobError('JOB_DELETED', `job ${jobId} was deleted (DELETE at ${at}); its transcript and audio are gone`, { deleted_at: at });
    return new JobError('JOB_NOT_FOUND', `no job with id ${jobId}`);
  }

  /**
   * A job's public status. A job cancelled by DELETE (stored as `failed`, error JOB_CANCELLED) is
   * `cancelled` here and on SSE; `result.duration` is seconds with 3 decimals.
   * @throws JobError JOB_NOT_FOUND, JOB_DELETED (410)
   */
  async status(jobId: string): Promise<JobStatusView> {
    const queued = await this.queue.get(jobId);
    const view = queued ? await this.fromQueue(jobId, queued) : await this.fromDatabase(jobId);
    if (view.result) view.result = { ...view.result, duration: roundSeconds(view.result.duration) };
    if (view.status === 'failed' && view.error?.code === CANCELLED_CODE) {
      return { ...view, status: 'cancelled', stage: 'cancelled', message: `cancelled: ${typeof view.error.message === 'string' ? view.error.message : 'by DELETE'}` };
    }
    return view;
  }

  private async fromQueue(jobId: string, q: QueuedJobState): Promise<JobStatusView> {
    const status = BULL_TO_STATUS[q.state] ?? 'queued';
    const p: Partial<JobProgress> = q.progress ?? {};
    const view: JobStatusView = {
      job_id: jobId,
      status,
      progress: status === 'completed' ? 100 : status === 'queued' ? 0 : Math.round(p.progress ?? 0),
      stage: status === 'completed' ? 'completed' : status === 'failed' ? 'failed' : status === 'queued' ? 'queued' : (p.stage ?? 'intake'),
      transcript_id: q.data.transcriptId,
      engine: q.data.engine,
      task: taskOf(q.data.options),
      worker_id: p.worker_id ?? null,
      message: p.message ?? status,
      ...(p.chunks_total !== undefined && status === 'processing' ? { chunks_done: p.chunks_done ?? 0, chunks_total: p.chunks_total } : {}),
    };
    if (status === 'queued' && q.attemptsMade > 0) {
      view.message = `waiting to retry (attempt ${q.attemptsMade + 1} of ${q.attempts}) after: ${publicFailedReason(q.failedReason)}`;
    } else if (status === 'queued') {
      view.message = 'waiting for a worker';
    }
    if (status === 'completed') {
      view.message = 'transcription completed';
      if (q.returnvalue) view.result = q.returnvalue;
    }
    if (status === 'failed') {
      // The recorded failure says what failed in the user's words; BullMQ's reason may name internal queue keys.
      const error = publicErrorOf(await this.repository.errorDetails(jobId));
      view.message = `transcription failed: ${typeof error?.message === 'string' ? error.message : publicFailedReason(q.failedReason)}`;
      view.error = error ?? { message: publicFailedReason(q.failedReason) };
    }
    return view;
  }

  private async fromDatabase(jobId: string): Promise<JobStatusView> {
    const row = await this.repository.find(jobId);
    if (!row) throw await this.missing(jobId);
    const t = row.transcript;
    const status = t.status;
    const stage: JobStage = status === 'processing' ? 'transcribing' : status;
    const view: JobStatusView = {
      job_id: jobId,
      status,
      progress: status === 'completed' ? 100 : 0,
      stage,
      transcript_id: t.id,
      engine: row.engine,
      task: taskOf(row.engineParams),
      worker_id: row.workerId,
      message: status === 'completed' ? 'transcription completed' : status === 'failed' ? 'transcription failed' : status,
    };
    if (status === 'completed') {
      // As the queue's copy of the job shows it: the intake's warnings, when there were any.
      const intake = intakeWarningsOf(t.metadata?.warnings ?? []);
      view.result = { segments_count: t.segments?.length ?? 0, duration: t.durationSec ?? 0, ...(intake.length ? { warnings: intake } : {}) };
    }
    const error = publicErrorOf(row.errorDetails);
    if (status === 'failed' && error) view.error = error;
    return view;
  }

  /** Records that DELETE removed `jobId`, so later lookups answer 410 JOB_DELETED. */
  recordDeletion(jobId: string): Promise<void> {
    return this.deleted.record(jobId);
  }

  /**
   * The normalized transcript of a completed job.
   * @param audioUrlFallback this API's audio endpoint, for drivers without presigned URLs.
   * @throws JobError JOB_NOT_FOUND, JOB_DELETED (410), JOB_NOT_COMPLETED (with the current status)
   */
  async result(jobId: string, audioUrlFallback: string): Promise<JobResultView> {
    const row = await this.repository.find(jobId);
    if (!row) throw await this.missing(jobId);
    const t = row.transcript;
    if (t.status !== 'completed') {
      const current = await this.status(jobId);
      throw new JobError('JOB_NOT_COMPLETED', `the job is ${current.status}; the result is available once it is completed`, {
        status: current.status,
        progress: current.progress,
        ...(current.error ? { job_error: current.error } : {}),
      });
    }
    const audioUrl = t.audioKey ? ((await this.storage.presignedGetUrl(t.audioKey, this.config.PRESIGNED_URL_TTL)) ?? audioUrlFallback) : null;
    return {
      job_id: jobId,
      transcript_id: t.id,
      status: 'completed',
      filename: t.filename,
      task: taskOf(row.engineParams),
      audio_url: audioUrl,
      language: t.language,
      duration: t.durationSec === null || t.durationSec === undefined ? null : roundSeconds(t.durationSec),
      text: t.text ?? '',
      segments: t.segments ?? [],
      speaker_roles: t.speakerRoles,
      engine: (t.metadata.engine) ?? row.engine,
      model: t.metadata.model ?? null,
      warnings: (t.metadata.warnings) ?? [],
      speech_seconds: typeof t.metadata.speech_sec === 'number' ? t.metadata.speech_sec : null,
      engine_seconds: typeof t.metadata.engine_sec === 'number' ? t.metadata.engine_sec : null,
    };
  }

  /**
   * The stored original upload of a job, streamed; with a `Range` header of one byte range
   * (what media players send to seek; parsed by range-parser), only that range. Several ranges,
   * or a malformed header, get the whole file.
   * @throws JobError JOB_NOT_FOUND, JOB_DELETED (410: the job was deleted), AUDIO_GONE (410: the
   *   audio was deleted by retention), RANGE_NOT_SATISFIABLE (416)
   */
  async audioFile(jobId: string, range?: string): Promise<AudioFile> {
    const row = await this.repository.find(jobId);
    if (!row) throw await this.missing(jobId);
    const t = row.transcript;
    if (!t.audioKey || !(await this.storage.exists(t.audioKey))) throw new JobError('AUDIO_GONE', 'the audio of this job is no longer stored');
    const size = await this.storage.size(t.audioKey);
    // The type the gateway detected, never the uploader's declaration (docs/security.md).
    const mimeType = servedMediaType(t.metadata);
    const ranges = range && size > 0 ? parseRange(size, range, { combine: true }) : -2;
    if (ranges === -1) throw new JobError('RANGE_NOT_SATISFIABLE', `the range ${range} is outside the ${size}-byte audio`, { size });
    if (ranges !== -2 && ranges.type === 'bytes' && ranges.length === 1) {
      const { start, end } = ranges[0];
      return { stream: await this.storage.readRange(t.audioKey, start, end), mimeType, filename: t.filename, size, partial: { start, end } };
    }
    return { stream: await this.storage.read(t.audioKey), mimeType, filename: t.filename, size };
  }
}
