import { Processor, WorkerHost } from '@nestjs/bullmq';
import { type OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { WebhookQueueName, type WebhookJobResult } from './webhook.constants.js';
import { WebhookDeliverer } from './webhook-deliverer.service.js';
import { finalWebhookError, type WebhookJob } from './webhook.queue.js';

/**
 * BullMQ worker for the webhooks queue (worker role only). Thin: one attempt per run through
 * WebhookDeliverer; a failed attempt is thrown so that BullMQ retries it with backoff, or as
 * UnrecoverableError when retrying cannot help.
 */
@Processor(WebhookQueueName.Webhooks)
export class WebhookProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly deliverer: WebhookDeliverer,
    private readonly config: AppConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.WEBHOOK_CONCURRENCY;
  }

  override async process(job: WebhookJob): Promise<WebhookJobResult> {
    const attempt = job.attemptsMade + 1;
    const outcome = await this.deliverer.attempt(job.data, attempt, job.opts.attempts ?? 1);
    if (outcome.delivered) return { attempt, status_code: outcome.statusCode! };
    const message = outcome.message ?? 'delivery failed';
    throw outcome.final ? finalWebhookError(message) : new Error(message);
  }
}
