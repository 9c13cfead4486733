import { OnQueueEvent, QueueEventsHost, QueueEventsListener } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { QueueName, type JobProgress } from './job-catalog.js';
import { TranscriptionEvent, TranscriptionEvents } from './transcription.events.js';

/**
 * API role: what workers do reaches the API process as BullMQ queue events (over Redis); this
 * bridge turns them into typed `Changed` events, so SSE subscribes to the pipeline's events and
 * never to BullMQ. One QueueEvents connection per API process.
 */
@Injectable()
@QueueEventsListener(QueueName.Transcription)
export class QueueEventsBridge extends QueueEventsHost {
  constructor(private readonly events: TranscriptionEvents) {
    super();
  }

  @OnQueueEvent('progress') onProgress({ jobId, data }: { jobId: string; data: unknown }): void {
    const progress = typeof data === 'object' && data !== null ? (data as Partial<JobProgress>) : undefined;
    this.events.emitNow(TranscriptionEvent.Changed, { jobId, ...(progress ? { progress } : {}) });
  }
  @OnQueueEvent('active') onActive({ jobId }: { jobId: string }): void { this.changed(jobId); }
  @OnQueueEvent('completed') onCompleted({ jobId }: { jobId: string }): void { this.changed(jobId); }
  @OnQueueEvent('failed') onFailed({ jobId }: { jobId: string }): void { this.changed(jobId); }
  @OnQueueEvent('delayed') onDelayed({ jobId }: { jobId: string }): void { this.changed(jobId); }
  @OnQueueEvent('waiting') onWaiting({ jobId }: { jobId: string }): void { this.changed(jobId); }

  private changed(jobId: string): void {
    this.events.emitNow(TranscriptionEvent.Changed, { jobId });
  }
}
