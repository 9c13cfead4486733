import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { ANONYMOUS_KEY_LABEL } from '../metrics/metrics.service.js';
import type { NewTranscript } from '../transcripts/transcripts.service.js';
import { EngineFallbacks } from './engine-fallbacks.js';
import type { TranscribeStepData } from './job-catalog.js';
import { JobRepository, type NewJobRow } from './job.repository.js';
import { QueuedAudioQuota } from './queued-audio-quota.js';
import { TranscriptionEvent, TranscriptionEvents } from './transcription.events.js';
import { TranscriptionQueue } from './transcription.queue.js';

/** A validated submission whose audio is already in storage. */
export interface JobSubmission {
  jobId: string;
  transcript: NewTranscript;
  job: Omit<NewJobRow, 'jobId' | 'maxRetries'>;
  /** The first step's payload, without the fallback chain (added here from ENGINE_FALLBACKS). */
  data: Omit<TranscribeStepData, 'step' | 'fallbacks' | 'attemptsPerEngine'>;
}

/**
 * The pipeline's entrance (API role): counts the job's audio against its key's quota
 * (QueuedAudioQuota), records the transcript and job rows and queues the job at its key's turn
 * (fair scheduling). All of it happens or none: when a step fails, the quota is given back and the
 * rows are removed again (the caller removes the stored audio).
 */
@Injectable()
export class JobSubmitter {
  constructor(
    private readonly config: AppConfig,
    private readonly repository: JobRepository,
    private readonly queue: TranscriptionQueue,
    private readonly fallbacks: EngineFallbacks,
    private readonly events: TranscriptionEvents,
    private readonly quota: QueuedAudioQuota,
  ) {}

  /**
   * @throws QuotaError (429 / 413) when the key's queued audio would exceed
   *   MAX_QUEUED_AUDIO_SECONDS_PER_KEY; whatever Postgres or Redis throw. Nothing is left behind then.
   */
  async submit(submission: JobSubmission): Promise<void> {
    const { jobId, transcript, job, data } = submission;
    const keyLabel = data.keyLabel ?? ANONYMOUS_KEY_LABEL;
    const audioSec = transcript.durationSec ?? null;
    await this.quota.reserve(keyLabel, jobId, audioSec);
    try {
      await this.repository.create(transcript, { ...job, jobId, maxRetries: this.config.JOB_MAX_RETRIES });
    } catch (err) {
      await this.quota.release(jobId);
      throw err;
    }
    const fallbacks = this.fallbacks.of(data.engine, data.options.task);
    const attemptsPerEngine = this.config.JOB_MAX_RETRIES + 1;
    try {
      await this.queue.add(jobId, { ...data, step: 'transcribe', ...(fallbacks.length ? { fallbacks, attemptsPerEngine } : {}) }, attemptsPerEngine * (1 + fallbacks.length), { keyLabel, audioSec: audioSec ?? 1 });
    } catch (err) {
      // Both undo steps run even when one fails; the caller sees the error that stopped the submission.
      await Promise.allSettled([this.repository.delete(transcript.id), this.quota.release(jobId)]);
      throw err;
    }
    await this.events.emit(TranscriptionEvent.Submitted, { jobId, transcriptId: transcript.id, engine: data.engine, ...(data.keyLabel ? { keyLabel: data.keyLabel } : {}) });
  }
}
