import { createHash } from 'node:crypto';
import { roundSeconds } from '../common/seconds.js';

/** The webhook queue of the typed job catalog (see src/jobs/jobs.constants.ts for the others). */
export enum WebhookQueueName {
  Webhooks = 'webhooks',
}

export enum WebhookJobName {
  /** One webhook delivery: POST the payload to the callback URL, retried with backoff. */
  Deliver = 'deliver',
}

/** Events the gateway sends, one per job, once the job is final. */
export const WEBHOOK_EVENTS = ['transcription.completed', 'transcription.failed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/**
 * Longest `result.text` sent in a payload (characters). A webhook says that a job finished; the
 * full transcript is fetched with `GET /api/transcribe/jobs/result/:job_id`, so hour-long texts
 * are cut here rather than posted whole on every retry.
 */
export const WEBHOOK_TEXT_LIMIT = 4096;

/** The JSON body of a webhook request (documented in docs/webhooks.md). */
export interface WebhookPayload {
  event: WebhookEvent;
  /** Same as X-Webhook-Id: the delivery's id, stable across retries. */
  id: string;
  job_id: string;
  transcript_id: string | null;
  status: 'completed' | 'failed';
  /** ISO-8601 time the job became final (not the time of this attempt). */
  occurred_at: string;
  /** Present for `transcription.completed`. `duration` in seconds. */
  result?: { segments_count: number; duration: number; text: string; text_truncated: boolean };
  /** Present for `transcription.failed`: the job's last error. */
  error?: { code: string; message: string };
}

/** Payload of WebhookJobName.Deliver: everything one attempt needs, fixed at enqueue time. */
export interface WebhookJobData {
  /** Delivery id (UUID): X-Webhook-Id and `webhook_deliveries.delivery_id`. */
  deliveryId: string;
  jobId: string;
  transcriptId: string | null;
  /** Validated http(s) callback URL. */
  url: string;
  event: WebhookEvent;
  payload: WebhookPayload;
}

/** What a successful attempt leaves as the BullMQ job's return value. */
export interface WebhookJobResult {
  attempt: number;
  status_code: number;
}

/**
 * The delivery id of (job, event): a UUID derived from a SHA-256 of both, so every enqueue of the
 * same event for the same job — a retried save, a second worker — yields the same X-Webhook-Id and
 * receivers de-duplicate it. Formatted as an RFC 9562 version-8 (custom) UUID.
 */
export function webhookDeliveryId(jobId: string, event: WebhookEvent): string {
  const h = createHash('sha256').update(`transcription-gateway/webhook\n${jobId}\n${event}`, 'utf8').digest();
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * `transcription.completed` payload. `duration` in seconds, rounded to 3 decimals like every API
 * answer (roundSeconds); `text` is cut to WEBHOOK_TEXT_LIMIT characters.
 */
export function completedPayload(input: {
  jobId: string;
  transcriptId: string | null;
  segmentsCount: number;
  durationSec: number;
  text: string;
  occurredAt?: Date;
}): WebhookPayload {
  const truncated = input.text.length > WEBHOOK_TEXT_LIMIT;
  return {
    event: 'transcription.completed',
    id: webhookDeliveryId(input.jobId, 'transcription.completed'),
    job_id: input.jobId,
    transcript_id: input.transcriptId,
    status: 'completed',
    occurred_at: (input.occurredAt ?? new Date()).toISOString(),
    result: {
      segments_count: input.segmentsCount,
      duration: roundSeconds(input.durationSec),
      text: truncated ? input.text.slice(0, WEBHOOK_TEXT_LIMIT) : input.text,
      text_truncated: truncated,
    },
  };
}

/**
 * `transcription.failed` payload from the job's error_details (code and message only: the rest,
 * such as engine details, stays behind the status endpoint).
 */
export function failedPayload(input: {
  jobId: string;
  transcriptId: string | null;
  error: { code?: unknown; message?: unknown } | null | undefined;
  occurredAt?: Date;
}): WebhookPayload {
  const code = typeof input.error?.code === 'string' ? input.error.code : 'INTERNAL';
  const message = typeof input.error?.message === 'string' ? input.error.message : 'transcription failed';
  return {
    event: 'transcription.failed',
    id: webhookDeliveryId(input.jobId, 'transcription.failed'),
    job_id: input.jobId,
    transcript_id: input.transcriptId,
    status: 'failed',
    occurred_at: (input.occurredAt ?? new Date()).toISOString(),
    error: { code, message },
  };
}
