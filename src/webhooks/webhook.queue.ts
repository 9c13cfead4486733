import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { UnrecoverableError, type Job, type Queue } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { WebhookJobName, WebhookQueueName, type WebhookJobData, type WebhookJobResult } from './webhook.constants.js';

/** BullMQ's view of one delivery, reduced to what the gateway reads. */
export interface QueuedWebhookState {
  /** BullMQ state: waiting, delayed, active, completed, failed. */
  state: string;
  /** Attempts that have finished (failed or succeeded). */
  attemptsMade: number;
  /** Attempts allowed in total (WEBHOOK_MAX_ATTEMPTS). */
  attempts: number;
  failedReason: string | null;
}

/**
 * The one class of the webhooks module that talks to BullMQ (adding deliveries, reading their
 * state). The BullMQ job id is derived from the delivery id, so enqueueing the same delivery twice
 * while the first is still in Redis adds nothing.
 */
@Injectable()
export class WebhookQueue {
  constructor(
    @InjectQueue(WebhookQueueName.Webhooks) private readonly queue: Queue<WebhookJobData, WebhookJobResult>,
    private readonly config: AppConfig,
  ) {}

  /**
   * Enqueues one delivery: WEBHOOK_MAX_ATTEMPTS attempts in total, the n-th retry delayed
   * WEBHOOK_BACKOFF_MS × 2^(n-1) ms (exponential); finished jobs leave Redis after REDIS_JOB_TTL
   * seconds (every attempt is in webhook_deliveries).
   */
  async add(data: WebhookJobData): Promise<void> {
    await this.queue.add(WebhookJobName.Deliver, data, {
      jobId: bullJobId(data.deliveryId),
      attempts: this.config.WEBHOOK_MAX_ATTEMPTS,
      backoff: { type: 'exponential', delay: this.config.WEBHOOK_BACKOFF_MS },
      removeOnComplete: { age: this.config.REDIS_JOB_TTL },
      removeOnFail: { age: this.config.REDIS_JOB_TTL },
    });
  }

  /** The delivery's state in Redis, or null when Redis no longer (or never) had it. */
  async get(deliveryId: string): Promise<QueuedWebhookState | null> {
    // State first, then the job hash: read the other way round, a job that fails between the two
    // reads would show `failed` with the attempt count of the attempt before.
    const state = await this.queue.getJobState(bullJobId(deliveryId));
    if (state === 'unknown') return null;
    const job = await this.queue.getJob(bullJobId(deliveryId));
    if (!job) return null;
    return { state, attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1, failedReason: job.failedReason ?? null };
  }
}

/** BullMQ custom ids must not be integers nor contain `:`. */
const bullJobId = (deliveryId: string) => `webhook-${deliveryId}`;

/** Marks a delivery error as final for BullMQ (no further attempts), keeping the message. */
export function finalWebhookError(message: string): Error {
  return new UnrecoverableError(message);
}

export type WebhookJob = Job<WebhookJobData, WebhookJobResult>;
