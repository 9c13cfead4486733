import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Repository } from 'typeorm';
import { AudioService } from '../audio/audio.service.js';
import { UrlFetcher } from '../audio/url-fetcher.js';
import { TempWorkspaceService } from '../storage/temp-workspace.service.js';
import { ContextsService, toWordBoosts } from '../contexts/contexts.service.js';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import type { TranscribeOptions, TranscriptionEngine } from '../engines/engine.spec.js';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage.driver.js';
import { TranscriptsService } from '../transcripts/transcripts.service.js';
import { WebhookService } from '../webhooks/webhook.service.js';
import type { SpeakerRolesRequest } from '../transcripts/speaker-roles.js';
import type { JobResultView, JobStatusView } from './dto/job-views.js';
import type { SubmitJobDto, SubmitJobResponse } from './dto/submit-job.dto.js';
import { chunkPrefix, type JobProgress, type JobStage, type JobStatus } from './jobs.constants.js';
import { JobError } from './jobs.errors.js';
import { JobCancellation } from './cancellation.js';
import { TranscriptJobEntity } from './transcript-job.entity.js';
import { TranscriptionQueue, type QueuedJobState } from './transcription.queue.js';

/** An upload as multer's disk storage leaves it (TEMP_DIR/uploads). */
export interface UploadedAudio {
  /** Local path of the streamed upload. */
  path: string;
  originalname: string;
  mimetype: string;
  /** Bytes. */
  size: number;
}

/** Keeps the client's file name readable but harmless: no directories, no control characters, ≤ 200 chars. */
export function sanitizeFilename(name: string): string {
  const base = path.basename(name.replace(/\\/g, '/')).normalize('NFC');
  // eslint-disable-next-line no-control-regex
  const cleaned = base.replace(/[\u0000-\u001f\u007f/]/g, '').replace(/^\.+/, '').trim();
  return (cleaned || 'audio').slice(0, 200);
}

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

/**
 * The API side of jobs: validated submission (nothing half-written on failure), status read from
 * Redis first and Postgres once Redis has expired it, and results.
 */
@Injectable()
export class JobsService {
  private readonly logger = new Logger(JobsService.name);

  constructor(
    private readonly config: AppConfig,
    private readonly engines: EngineRegistry,
    private readonly audio: AudioService,
    private readonly transcripts: TranscriptsService,
    private readonly queue: TranscriptionQueue,
    private readonly contexts: ContextsService,
    private readonly metrics: MetricsService,
    private readonly cancellation: JobCancellation,
    private readonly webhooks: WebhookService,
    private readonly urlFetcher: UrlFetcher,
    private readonly temp: TempWorkspaceService,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    @InjectRepository(TranscriptJobEntity) private readonly jobs: Repository<TranscriptJobEntity>,
  ) {}

  /**
   * Validates an upload, stores it, records the transcript and job rows and enqueues the job.
   * On any failure every step already taken is undone (object deleted, rows removed, job removed).
   * The upload's temp file is always removed.
   *
   * @param engineFromPath engine named by the URL (`/transcribe/:engine`); wins over `dto.engine`.
   * @throws JobError FILE_REQUIRED; UnknownEngineError; AudioError (empty, unreadable, no audio stream, truncated).
   */
  async submit(file: UploadedAudio | undefined, dto: SubmitJobDto, engineFromPath?: string, keyLabel?: string): Promise<SubmitJobResponse> {
    if (file && dto.audio_url) {
      await rm(file.path, { force: true });
      throw new JobError('INVALID_OPTION', "send either 'file' or 'audio_url', not both");
    }
    if (!file && !dto.audio_url) {
      throw new JobError('FILE_REQUIRED', "the multipart field 'file' is required: send the audio or video file as 'file', or its http(s) URL as 'audio_url'");
    }
    let upload = file;
    try {
      const engine = this.engines.get(engineFromPath ?? dto.engine ?? this.config.DEFAULT_TRANSCRIPTION_ENGINE);
      const options = this.engineOptions(engine, dto);
      const speakerRoles = this.speakerRoles(dto);
      // Checked before anything is stored; throws WebhookError (400) for a bad or private URL or a missing WEBHOOK_SECRET.
      const callbackUrl = dto.callback_url !== undefined ? await this.webhooks.checkCallbackUrl(dto.callback_url) : null;
      if (dto.context_id) options.word_boosts = await this.wordBoosts(engine, dto.context_id);
      if (!upload) {
        // Downloaded like an upload: streamed to the uploads dir with the same size limit, removed in finally.
        const dest = path.join(this.temp.uploadsDir, `url-${randomUUID()}`);
        upload = { path: dest, originalname: '', mimetype: '', size: 0 };
        const got = await this.urlFetcher.download(dto.audio_url!, dest, { maxBytes: this.config.MAX_FILE_SIZE });
        upload = { path: dest, originalname: got.filename, mimetype: got.contentType, size: got.sizeBytes };
      }
      const file = upload;
      const probe = await this.audio.probe(file.path);
      if (dto.multichannel && probe.channels < 2) {
        throw new JobError('INVALID_OPTION', `multichannel=true needs a recording with 2 or more channels; this one has ${probe.channels}`);
      }
      const jobId = randomUUID();
      const transcriptId = randomUUID();
      const filename = sanitizeFilename(file.originalname);
      const audioKey = `audio/${transcriptId}/${filename}`;
      const engineParams = {
        ...options,
        ...(dto.context_id ? { context_id: dto.context_id } : {}),
        ...(dto.multichannel ? { multichannel: true } : {}),
        ...(dto.speaker_roles ? { speaker_roles: dto.speaker_roles } : {}),
      };

      await this.storage.put(audioKey, file.path, { contentType: file.mimetype });
      let rowsWritten = false;
      try {
        await this.jobs.manager.transaction(async (manager) => {
          await this.transcripts.create(
            {
              id: transcriptId,
              sessionId: dto.session_id ?? null,
              filename,
              audioKey,
              mimeType: file.mimetype || null,
              sizeBytes: probe.size_bytes,
              durationSec: probe.duration_sec,
              language: dto.language ?? null,
              metadata: { format: probe.format_name, codec: probe.codec, sample_rate: probe.sample_rate, channels: probe.channels, has_video: probe.has_video },
            },
            manager,
          );
          await manager.getRepository(TranscriptJobEntity).insert({
            transcriptId,
            jobId,
            engine: engine.id,
            engineParams,
            callbackUrl,
            maxRetries: this.config.JOB_MAX_RETRIES,
            attempts: 0,
          });
        });
        rowsWritten = true;
        const fallbacks = this.fallbacksOf(engine.id);
        const attemptsPerEngine = this.config.JOB_MAX_RETRIES + 1;
        await this.queue.add(
          jobId,
          {
            transcriptId, engine: engine.id, audioKey, options, multichannel: dto.multichannel ?? false,
            ...(speakerRoles ? { speakerRoles } : {}),
            ...(keyLabel ? { keyLabel } : {}),
            ...(fallbacks.length ? { fallbacks, attemptsPerEngine } : {}),
          },
          attemptsPerEngine * (1 + fallbacks.length),
        );
      } catch (err) {
        if (rowsWritten) await this.deleteRows(transcriptId).catch((e) => this.logger.error(`rollback of rows failed: ${String(e)}`));
        await this.storage.delete(audioKey).catch((e) => this.logger.error(`rollback of ${audioKey} failed: ${String(e)}`));
        throw err;
      }
      this.metrics.jobSubmitted(engine.id);
      return {
        job_id: jobId,
        transcript_id: transcriptId,
        engine: engine.id,
        status: 'queued',
        message: `queued for transcription by ${engine.id} (${probe.duration_sec?.toFixed(1) ?? '?'} s of ${probe.codec} audio)`,
      };
    } finally {
      if (upload) await rm(upload.path, { force: true });
    }
  }

  /**
   * Request fields → engine options, checked against what the engine offers.
   * @throws JobError INVALID_OPTION (unknown model, min_speakers > max_speakers)
   */
  private engineOptions(engine: TranscriptionEngine, dto: SubmitJobDto): TranscribeOptions {
    const models = engine.capabilities.models;
    if (dto.model && models.length > 0 && !models.includes(dto.model)) {
      throw new JobError('INVALID_OPTION', `model '${dto.model}' is not available for engine ${engine.id}; available models: ${models.join(', ')}`, { available_models: models });
    }
    if (dto.min_speakers !== undefined && dto.max_speakers !== undefined && dto.min_speakers > dto.max_speakers) {
      throw new JobError('INVALID_OPTION', `min_speakers (${dto.min_speakers}) must not exceed max_speakers (${dto.max_speakers})`);
    }
    const diarize = dto.enable_diarization ?? engine.capabilities.diarization;
    return {
      ...(dto.language ? { language: dto.language } : {}),
      ...(dto.model ? { model: dto.model } : {}),
      ...(dto.prompt ? { prompt: dto.prompt } : {}),
      ...(diarize || dto.enable_diarization === false
        ? { diarization: { enabled: diarize, ...(dto.min_speakers ? { min_speakers: dto.min_speakers } : {}), ...(dto.max_speakers ? { max_speakers: dto.max_speakers } : {}) } }
        : {}),
    };
  }

  /** Registered fallback engines of `engineId` from ENGINE_FALLBACKS (`a:b,c;d:e`), in order. */
  private fallbacksOf(engineId: string): string[] {
    for (const rule of this.config.ENGINE_FALLBACKS.split(';').filter(Boolean)) {
      const [from, to] = rule.split(':');
      if (EngineRegistry.canonicalId(from!) === engineId) {
        return to!.split(',').map((id) => EngineRegistry.canonicalId(id)).filter((id) => id !== engineId && this.engines.has(id));
      }
    }
    return [];
  }

  /**
   * The speaker-roles request of a submission, or undefined for `none`.
   * @throws JobError INVALID_OPTION when speaker_role_keywords is not a JSON object of string arrays
   */
  private speakerRoles(dto: SubmitJobDto): SpeakerRolesRequest | undefined {
    if (!dto.speaker_roles || dto.speaker_roles === 'none') return undefined;
    const request: SpeakerRolesRequest = { strategy: dto.speaker_roles };
    if (dto.speaker_role_names) request.roles = dto.speaker_role_names.split(',').map((r) => r.trim());
    if (dto.speaker_role_keywords) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(dto.speaker_role_keywords);
      } catch {
        parsed = null;
      }
      const valid = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) &&
        Object.values(parsed).every((v) => Array.isArray(v) && v.length <= 200 && v.every((k) => typeof k === 'string' && k.length > 0 && k.length <= 100));
      if (!valid) {
        throw new JobError('INVALID_OPTION', 'speaker_role_keywords must be a JSON object mapping each role to a list of keywords, e.g. {"provider": ["diagnosis"], "patient": ["pain"]}');
      }
      request.keywords = parsed as Record<string, string[]>;
    }
    return request;
  }

  /**
   * Resolves a word-boosting context for an engine that can boost.
   * @throws JobError INVALID_OPTION naming the engines that can boost; ContextNotFoundError (404)
   */
  private async wordBoosts(engine: TranscriptionEngine, contextId: string): Promise<TranscribeOptions['word_boosts']> {
    if (!engine.capabilities.word_boosting) {
      const capable = this.engines.all().filter((e) => e.capabilities.word_boosting).map((e) => e.id);
      throw new JobError(
        'INVALID_OPTION',
        `engine ${engine.id} does not support word boosting, so context_id cannot be used with it; engines that can boost: ${capable.join(', ') || '(none enabled)'}`,
        { boosting_engines: capable },
      );
    }
    return toWordBoosts(await this.contexts.get(contextId));
  }

  private async deleteRows(transcriptId: string): Promise<void> {
    await this.jobs.manager.transaction(async (manager) => {
      await manager.getRepository(TranscriptJobEntity).delete({ transcriptId });
      await this.transcripts.delete(transcriptId, manager);
    });
  }

  /**
   * Current status: from Redis while BullMQ still holds the job, from Postgres afterwards.
   * @throws JobError JOB_NOT_FOUND
   */
  async status(jobId: string): Promise<JobStatusView> {
    const queued = await this.queue.get(jobId);
    if (queued) return this.fromQueue(jobId, queued);
    return this.fromDatabase(jobId);
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
      worker_id: p.worker_id ?? null,
      message: p.message ?? status,
      ...(p.chunks_total !== undefined && status === 'processing' ? { chunks_done: p.chunks_done ?? 0, chunks_total: p.chunks_total } : {}),
    };
    if (status === 'queued' && q.attemptsMade > 0) {
      view.message = `waiting to retry (attempt ${q.attemptsMade + 1} of ${q.attempts}) after: ${q.failedReason ?? 'an error'}`;
    } else if (status === 'queued') {
      view.message = 'waiting for a worker';
    }
    if (status === 'completed') {
      view.message = 'transcription completed';
      if (q.returnvalue) view.result = q.returnvalue;
    }
    if (status === 'failed') {
      const row = await this.jobs.findOneBy({ jobId });
      view.message = `transcription failed: ${q.failedReason ?? 'unknown error'}`;
      view.error = row?.errorDetails ?? { message: q.failedReason };
    }
    return view;
  }

  private async fromDatabase(jobId: string): Promise<JobStatusView> {
    const row = await this.jobs.findOne({ where: { jobId }, relations: { transcript: true } });
    if (!row || !row.transcript) throw new JobError('JOB_NOT_FOUND', `no job with id ${jobId}`);
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
      worker_id: row.workerId,
      message: status === 'completed' ? 'transcription completed' : status === 'failed' ? 'transcription failed' : status,
    };
    if (status === 'completed') view.result = { segments_count: t.segments?.length ?? 0, duration: t.durationSec ?? 0 };
    if (status === 'failed' && row.errorDetails) view.error = row.errorDetails;
    return view;
  }

  /**
   * The normalized transcript of a completed job.
   * @throws JobError JOB_NOT_FOUND, JOB_NOT_COMPLETED (with the current status)
   */
  async result(jobId: string, audioUrlFallback: string): Promise<JobResultView> {
    const row = await this.jobs.findOne({ where: { jobId }, relations: { transcript: true } });
    if (!row || !row.transcript) throw new JobError('JOB_NOT_FOUND', `no job with id ${jobId}`);
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
      audio_url: audioUrl,
      language: t.language,
      duration: t.durationSec,
      text: t.text ?? '',
      segments: t.segments ?? [],
      speaker_roles: t.speakerRoles,
      engine: (t.metadata.engine as string | undefined) ?? row.engine,
      model: t.metadata.model ?? null,
      warnings: (t.metadata.warnings as string[] | undefined) ?? [],
    };
  }

  /**
   * DELETE a job. A queued or running job is cancelled (its chunk jobs too; a running engine call
   * is aborted in whichever worker runs it) and ends `failed` with error code JOB_CANCELLED, its
   * rows kept so the status stays readable. A finished job is deleted: transcript, job row, audio
   * object and Redis entry.
   * @throws JobError JOB_NOT_FOUND
   */
  async remove(jobId: string): Promise<{ job_id: string; status: 'cancelled' | 'deleted' }> {
    const row = await this.jobs.findOne({ where: { jobId }, relations: { transcript: true } });
    if (!row || !row.transcript) throw new JobError('JOB_NOT_FOUND', `no job with id ${jobId}`);
    const t = row.transcript;
    const queued = await this.queue.get(jobId);
    if (t.status === 'queued' || t.status === 'processing') {
      const details = { code: 'JOB_CANCELLED', message: 'cancelled by DELETE', retryable: false, final: true, at: new Date().toISOString() };
      await this.jobs.manager.transaction(async (manager) => {
        await manager.query(`UPDATE transcript_jobs SET completed_at = now(), error_details = $2 WHERE job_id = $1 AND completed_at IS NULL`, [jobId, details]);
        await manager.query(`UPDATE transcripts SET status = 'failed', updated_at = now() WHERE id = $1`, [t.id]);
      });
      await this.cancellation.publish({ jobId, pieces: queued?.data.pieces?.length ?? 0 });
      await this.queue.removeWithChildren(jobId);
      await this.removeObjects(chunkPrefix(jobId));
      return { job_id: jobId, status: 'cancelled' };
    }
    await this.queue.removeWithChildren(jobId);
    if (t.audioKey) await this.storage.delete(t.audioKey);
    await this.removeObjects(chunkPrefix(jobId));
    await this.deleteRows(t.id);
    return { job_id: jobId, status: 'deleted' };
  }

  private async removeObjects(prefix: string): Promise<void> {
    for (const key of await this.storage.list(prefix)) await this.storage.delete(key);
  }

  /**
   * The stored original upload of a job, streamed.
   * @throws JobError JOB_NOT_FOUND, AUDIO_GONE
   */
  async audioFile(jobId: string, range?: string): Promise<{ stream: Readable; mimeType: string; filename: string; size: number; partial?: { start: number; end: number } }> {
    const row = await this.jobs.findOne({ where: { jobId }, relations: { transcript: true } });
    if (!row || !row.transcript) throw new JobError('JOB_NOT_FOUND', `no job with id ${jobId}`);
    const t = row.transcript;
    if (!t.audioKey || !(await this.storage.exists(t.audioKey))) throw new JobError('AUDIO_GONE', 'the audio of this job is no longer stored');
    const size = await this.storage.size(t.audioKey);
    const mimeType = t.mimeType ?? 'application/octet-stream';
    // A single `bytes=start-end` range (what media players send to seek); anything else gets the whole file.
    const m = range ? /^bytes=(\d*)-(\d*)$/.exec(range.trim()) : null;
    if (m && (m[1] || m[2]) && size > 0) {
      let start = m[1] ? Number(m[1]) : Math.max(0, size - Number(m[2]));
      let end = m[1] && m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start > end || start >= size) throw new JobError('RANGE_NOT_SATISFIABLE', `the range ${range} is outside the ${size}-byte audio`, { size });
      return { stream: await this.storage.readRange(t.audioKey, start, end), mimeType, filename: t.filename, size, partial: { start, end } };
    }
    return { stream: await this.storage.read(t.audioKey), mimeType, filename: t.filename, size };
  }
}
