import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { WebhookDeliveryEntity } from './webhook-delivery.entity.js';
import { signWebhook } from './webhook-signature.js';
import type { WebhookJobData } from './webhook.constants.js';
import { WebhookSender } from './webhook.sender.js';

/** What one attempt came to, and whether BullMQ should try again. */
export interface AttemptOutcome {
  delivered: boolean;
  /** True when no further attempt may help (410 Gone, refused address). */
  final: boolean;
  statusCode: number | null;
  /** Why the attempt failed, for the BullMQ failed reason (null when delivered). */
  message: string | null;
}

/**
 * Runs one delivery attempt (worker role): serializes the payload, signs it with a fresh
 * timestamp, POSTs it and records the attempt as a row of webhook_deliveries.
 *
 * Status handling: 2xx = delivered; 410 Gone = the receiver asks us to stop (final); any other
 * status, a timeout or a network error = retry with backoff; a private address (with
 * ALLOW_PRIVATE_URLS=false) = final.
 */
@Injectable()
export class WebhookDeliverer {
  private readonly logger = new Logger(WebhookDeliverer.name);

  constructor(
    private readonly config: AppConfig,
    private readonly sender: WebhookSender,
    @InjectRepository(WebhookDeliveryEntity) private readonly deliveries: Repository<WebhookDeliveryEntity>,
  ) {}

  /**
   * @param attempt 1-based number of this attempt.
   * @throws Error when WEBHOOK_SECRET is unset (nothing could be signed), or when the row cannot be
   *   written (the attempt is then retried like a failed delivery).
   */
  async attempt(data: WebhookJobData, attempt: number, maxAttempts: number): Promise<AttemptOutcome> {
    const secret = this.config.WEBHOOK_SECRET;
    if (!secret) throw new Error('WEBHOOK_SECRET is not set on this worker: webhooks cannot be signed');
    const body = JSON.stringify(data.payload);
    const timestamp = Math.floor(Date.now() / 1000);
    const sent = await this.sender.post(
      data.url,
      body,
      {
        'Content-Type': 'application/json',
        'User-Agent': 'transcription-gateway',
        'X-Webhook-Id': data.deliveryId,
        'X-Webhook-Timestamp': String(timestamp),
        'X-Webhook-Signature': signWebhook(secret, timestamp, body),
      },
      { timeoutMs: this.config.WEBHOOK_TIMEOUT_MS, allowPrivate: this.config.ALLOW_PRIVATE_URLS },
    );

    const delivered = sent.error === null && sent.statusCode !== null && sent.statusCode >= 200 && sent.statusCode < 300;
    const gone = sent.statusCode === 410;
    const error = delivered
      ? null
      : (sent.error ?? `HTTP ${sent.statusCode}${sent.responseExcerpt ? `: ${sent.responseExcerpt.replace(/\s+/g, ' ').trim()}` : ''}`);
    await this.deliveries.insert({
      deliveryId: data.deliveryId,
      jobId: data.jobId,
      transcriptId: data.transcriptId,
      url: data.url,
      event: data.event,
      attempt,
      statusCode: sent.statusCode,
      error,
      durationMs: sent.durationMs,
      delivered,
    });

    const final = !delivered && (gone || sent.refused);
    if (!delivered) {
      const next = final ? 'stopping' : attempt >= maxAttempts ? 'giving up' : 'will retry';
      this.logger.warn(`webhook ${data.event} for job ${data.jobId} attempt ${attempt}/${maxAttempts} failed (${next}): ${error}`);
    }
    return { delivered, final, statusCode: sent.statusCode, message: error };
  }
}
