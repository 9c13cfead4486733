import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { AudioService } from '../audio/audio.service.js';
import { UrlFetcher } from '../audio/url-fetcher.js';
import { AppConfig } from '../config/app-config.js';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage.driver.js';
import { TempWorkspaceService } from '../storage/temp-workspace.service.js';
import { JobSubmitter } from '../transcription/job-submitter.js';
import type { SubmitJobDto, SubmitJobResponse } from './dto/submit-job.dto.js';
import { JobError } from './jobs.errors.js';
import { SubmitOptionsResolver } from './submit-options.js';
import { safeFilename } from '../common/filename.js';
import { assertWithinDurationLimit } from '../audio/duration-limit.js';
import { declaredMediaType } from '../common/media-type.js';

/** Removes a temp upload; one that is not there any more is fine. */
async function removeUpload(filePath: string): Promise<void> {
  await unlink(filePath).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** An upload as multer's disk storage leaves it (TEMP_DIR/uploads). */
export interface UploadedAudio {
  /** Local path of the streamed upload. */
  path: string;
  originalname: string;
  mimetype: string;
  /** Bytes. */
  size: number;
}

/**
 * Accepts submissions: resolves and checks the request (SubmitOptionsResolver), fetches
 * `audio_url` like an upload, probes the audio, stores it and hands the job to the pipeline
 * (JobSubmitter). Nothing is half-written: on any failure every step already taken is undone
 * (object deleted; the submitter removes rows it wrote). The upload's temp file is always removed.
 */
@Injectable()
export class SubmissionService {
  private readonly logger = new Logger(SubmissionService.name);

  constructor(
    private readonly config: AppConfig,
    private readonly resolver: SubmitOptionsResolver,
    private readonly audio: AudioService,
    private readonly urlFetcher: UrlFetcher,
    private readonly temp: TempWorkspaceService,
    private readonly submitter: JobSubmitter,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  /**
   * @param engineFromPath engine named by the URL (`/transcribe/:engine`); wins over `dto.engine`.
   * @param keyLabel short label of the caller's API key (metrics), never the key.
   * @returns 202 body `{job_id, transcript_id, engine, status: 'queued', message}`.
   * @throws JobError FILE_REQUIRED / INVALID_OPTION; whatever SubmitOptionsResolver raises;
   *   UrlFetchError; AudioError (empty, unreadable, no audio stream, truncated, unsupported WAV
   *   format, no samples, AUDIO_TOO_LONG over MAX_AUDIO_DURATION_SECONDS).
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
    /** True once storage took the upload (renamed into place): nothing is left to remove. */
    let uploadGone = false;
    try {
      const resolved = await this.resolver.resolve(dto, engineFromPath);
      if (!upload) upload = await this.download(dto.audio_url!);
      const probe = await this.audio.probe(upload.path, undefined, upload.size);
      assertWithinDurationLimit(probe.duration_sec, this.config.MAX_AUDIO_DURATION_SECONDS);
      if (dto.multichannel && probe.channels < 2) {
        throw new JobError('INVALID_OPTION', `multichannel=true needs a recording with 2 or more channels; this one has ${probe.channels}`);
      }
      const jobId = randomUUID();
      const transcriptId = randomUUID();
      const filename = safeFilename(upload.originalname);
      const audioKey = `audio/${transcriptId}/${filename}`;
      const engine = resolved.engine.id;

      // The upload is ours and done with: local storage moves it into place instead of copying it.
      const stored = await this.storage.put(audioKey, upload.path, { contentType: upload.mimetype, move: true, size_bytes: probe.size_bytes });
      if (stored.moved) uploadGone = true;
      try {
        await this.submitter.submit({
          jobId,
          transcript: {
            id: transcriptId,
            sessionId: dto.session_id ?? null,
            filename,
            audioKey,
            mimeType: declaredMediaType(upload.mimetype),
            sizeBytes: probe.size_bytes,
            durationSec: probe.duration_sec,
            language: dto.language ?? null,
            metadata: { format: probe.format_name, codec: probe.codec, sample_rate: probe.sample_rate, channels: probe.channels, has_video: probe.has_video, probed_by: probe.probed_by },
          },
          job: { engine, engineParams: resolved.engineParams, callbackUrl: resolved.callbackUrl },
          data: {
            transcriptId,
            engine,
            audioKey,
            options: resolved.options,
            multichannel: dto.multichannel ?? false,
            vadFilter: dto.vad_filter ?? true,
            ...(probe.duration_sec !== null ? { claimedDurationSec: probe.duration_sec } : {}),
            ...(resolved.speakerRoles ? { speakerRoles: resolved.speakerRoles } : {}),
            ...(keyLabel ? { keyLabel } : {}),
          },
        });
      } catch (err) {
        await this.storage.delete(audioKey).catch((e: unknown) => this.logger.error(`rollback of ${audioKey} failed: ${String(e)}`));
        throw err;
      }
      return {
        job_id: jobId,
        transcript_id: transcriptId,
        engine,
        status: 'queued',
        message: `queued for transcription by ${engine} (${probe.duration_sec?.toFixed(1) ?? '?'} s of ${probe.codec} audio)`,
      };
    } finally {
      // Unlink is one system call where rm is several; none when storage took the file.
      if (upload && !uploadGone) await removeUpload(upload.path);
    }
  }

  /** Downloads `audio_url` like an upload: streamed to the uploads dir with the same size limit. */
  private async download(url: string): Promise<UploadedAudio> {
    const dest = path.join(this.temp.uploadsDir, `url-${randomUUID()}`);
    try {
      const got = await this.urlFetcher.download(url, dest, { maxBytes: this.config.MAX_FILE_SIZE });
      return { path: dest, originalname: got.filename, mimetype: got.contentType, size: got.sizeBytes };
    } catch (err) {
      await rm(dest, { force: true });
      throw err;
    }
  }
}
