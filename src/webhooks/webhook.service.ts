import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { validateCallbackUrl, type HostResolver } from './callback-url.js';
import { webhookDeliveryId, type WebhookEvent, type WebhookPayload } from './webhook.constants.js';
import { WebhookQueue } from './webhook.queue.js';

/** One webhook to send (see WebhookService.enqueue). */
export interface WebhookRequest {
  /** Public job id (transcript_jobs.job_id). */
  jobId: string;
  transcriptId: string | null;
  /** The job's callback URL, as validated at submission (transcript_jobs.callback_url). */
  url: string;
  event: WebhookEvent;
  /** Built with completedPayload() or failedPayload() (src/webhooks/webhook.constants.ts). */
  payload: WebhookPayload;
}

/**
 * The webhooks module's API for the jobs module: checking a callback URL at submission and
 * enqueueing a delivery once a job is final. Delivery itself (signing, POST, retries, the
 * webhook_deliveries log) runs on workers, in WebhookDeliverer.
 */
@Injectable()
export class WebhookService {
  constructor(
    private readonly config: AppConfig,
    private readonly queue: WebhookQueue,
  ) {}

  /**
   * Checks a submission's `callback_url` against this gateway's configuration (WEBHOOK_SECRET set,
   * ALLOW_PRIVATE_URLS) and returns the normalized URL to store in transcript_jobs.callback_url.
   *
   * @throws WebhookError WEBHOOKS_NOT_CONFIGURED, CALLBACK_URL_INVALID, CALLBACK_URL_FORBIDDEN (HTTP 400).
   */
  checkCallbackUrl(raw: string, resolve?: HostResolver): Promise<string> {
    return validateCallbackUrl(raw, {
      secretConfigured: Boolean(this.config.WEBHOOK_SECRET),
      allowPrivate: this.config.ALLOW_PRIVATE_URLS,
      ...(resolve ? { resolve } : {}),
    });
  }

  /**
   * Queues a delivery of `payload` to `url`. The delivery id (X-Webhook-Id) is derived from
   * (jobId, event), so calling this twice for the same final event of a job sends one webhook
   * while the first is still in Redis, and the same X-Webhook-Id in any case.
   *
   * @returns the delivery id.
   * @throws whatever BullMQ raises when Redis is unreachable (the caller decides whether to log or fail).
   */
  async enqueue(request: WebhookRequest): Promise<{ deliveryId: string }> {
    const deliveryId = webhookDeliveryId(request.jobId, request.event);
    await this.queue.add({
      deliveryId,
      jobId: request.jobId,
      transcriptId: request.transcriptId,
      url: request.url,
      event: request.event,
      payload: { ...request.payload, id: deliveryId, event: request.event },
    });
    return { deliveryId };
  }
}
