import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { TranscriptionEvent, type JobCompletedEvent, type JobFailedEvent } from '../transcription/transcription.events.js';
import { completedPayload, failedPayload, type WebhookPayload } from './webhook.constants.js';
import { WebhookService } from './webhook.service.js';

/**
 * Queues the completion/failure webhook of jobs submitted with a callback_url, on the pipeline's
 * lifecycle events. A replayed completion (a re-run found the result saved) queues the same
 * delivery id again, so a webhook lost in a crash is sent, and one already sent is at most
 * repeated, never changed. Cancelled jobs (DELETE) send nothing.
 */
@Injectable()
export class TranscriptionWebhooksListener {
  private readonly logger = new Logger(TranscriptionWebhooksListener.name);

  constructor(private readonly webhooks: WebhookService) {}

  @OnEvent(TranscriptionEvent.Completed, { async: true, promisify: true })
  async onCompleted(event: JobCompletedEvent): Promise<void> {
    if (!event.callbackUrl) return;
    await this.enqueue(event.jobId, event.transcriptId, event.callbackUrl, completedPayload({
      jobId: event.jobId, transcriptId: event.transcriptId, segmentsCount: event.segmentsCount, durationSec: event.durationSec, text: event.text,
    }));
  }

  @OnEvent(TranscriptionEvent.Failed, { async: true, promisify: true })
  async onFailed(event: JobFailedEvent): Promise<void> {
    if (!event.callbackUrl) return;
    await this.enqueue(event.jobId, event.transcriptId, event.callbackUrl, failedPayload({ jobId: event.jobId, transcriptId: event.transcriptId, error: event.error }));
  }

  /** Never throws: the job's outcome is recorded already and must not turn into a failure because Redis hiccupped here. */
  private async enqueue(jobId: string, transcriptId: string, url: string, payload: WebhookPayload): Promise<void> {
    try {
      await this.webhooks.enqueue({ jobId, transcriptId, url, event: payload.event, payload });
    } catch (err) {
      this.logger.error(`job ${jobId}: queueing its ${payload.event} webhook failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
