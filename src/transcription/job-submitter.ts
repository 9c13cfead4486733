import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import type { NewTranscript } from '../transcripts/transcripts.service.js';
import { EngineFallbacks } from './engine-fallbacks.js';
import type { TranscribeStepData } from './job-catalog.js';
import { JobRepository, type NewJobRow } from './job.repository.js';
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
 * The pipeline's entrance (API role): records the transcript and job rows and queues the job.
 * Either both happen or neither: when queueing fails the rows are removed again (the caller
 * removes the stored audio).
 */
@Injectable()
export class JobSubmitter {
  constructor(
    private readonly config: AppConfig,
    private readonly repository: JobRepository,
    private readonly queue: TranscriptionQueue,
    private readonly fallbacks: EngineFallbacks,
    private readonly events: TranscriptionEvents,
  ) {}

  /** @throws whatever Postgres or Redis throw; nothing is left behind then. */
  async submit(submission: JobSubmission): Promise<void> {
    const { jobId, transcript, job, data } = submission;
    await this.repository.create(transcript, { ...job, jobId, maxRetries: this.config.JOB_MAX_RETRIES });
    const fallbacks = this.fallbacks.of(data.engine, data.options.task);
    const attemptsPerEngine = this.config.JOB_MAX_RETRIES + 1;
    try {
      await this.queue.add(jobId, { ...data, step: 'transcribe', ...(fallbacks.length ? { fallbacks, attemptsPerEngine } : {}) }, attemptsPerEngine * (1 + fallbacks.length));
    } catch (err) {
      await this.repository.delete(transcript.id);
      throw err;
    }
    await this.events.emit(TranscriptionEvent.Submitted, { jobId, transcriptId: transcript.id, engine: data.engine, ...(data.keyLabel ? { keyLabel: data.keyLabel } : {}) });
  }
}
