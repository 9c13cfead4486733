import { Inject, Injectable } from '@nestjs/common';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage.driver.js';
import { JobCancellation } from './cancellation.js';
import { JobLifecycle } from './job-lifecycle.service.js';
import { JobRepository } from './job.repository.js';
import { LongAudioPipeline } from './long-audio/long-audio.pipeline.js';
import { TranscriptionQueue } from './transcription.queue.js';

/** What DELETE did to a job. */
export type RemovalOutcome = 'cancelled' | 'deleted' | 'not-found';

/**
 * Cancels and deletes jobs (API role). A queued or running job is cancelled: it ends `failed`
 * with code JOB_CANCELLED (rows kept, so its status stays readable), every worker process aborts
 * it and its chunk jobs if it runs them (Redis pub/sub), and its queued parts and stored pieces
 * are removed. A finished job is deleted: transcript, job row, audio object and Redis entry.
 */
@Injectable()
export class JobControl {
  constructor(
    private readonly repository: JobRepository,
    private readonly lifecycle: JobLifecycle,
    private readonly cancellation: JobCancellation,
    private readonly queue: TranscriptionQueue,
    private readonly pipeline: LongAudioPipeline,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  async remove(jobId: string): Promise<RemovalOutcome> {
    const row = await this.repository.find(jobId);
    if (!row) return 'not-found';
    const { transcript } = row;
    if (transcript.status === 'queued' || transcript.status === 'processing') {
      const queued = await this.queue.get(jobId);
      await this.lifecycle.cancelled(jobId, transcript.id, row.engine);
      const pieces = queued?.data.step === 'merge' ? queued.data.pieces.length : 0;
      await this.cancellation.publish({ jobId, pieces });
      await this.queue.removeWithChildren(jobId);
      await this.pipeline.removeChunkObjects(jobId);
      return 'cancelled';
    }
    await this.queue.removeWithChildren(jobId);
    if (transcript.audioKey) await this.storage.delete(transcript.audioKey);
    await this.pipeline.removeChunkObjects(jobId);
    await this.repository.delete(transcript.id);
    return 'deleted';
  }
}
