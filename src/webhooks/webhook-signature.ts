import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signing, in the style of Stripe and Standard Webhooks: the signed content is
 * `${timestamp}.${body}` (timestamp in unix seconds, body the exact bytes sent), the signature is
 * the lowercase hex HMAC-SHA256 of it under the shared secret WEBHOOK_SECRET, sent as
 * `X-Webhook-Signature: v1=<hex>`. Binding the timestamp into the signature is what makes the
 * receiver's tolerance check a replay protection: an attacker cannot re-date a captured request.
 *
 * This file depends on node:crypto only, so receivers written in Node can copy it as it is.
 */

/** Header names of every webhook request (lowercase as Node exposes them in `req.headers`). */
export const WEBHOOK_HEADERS = {
  /** Delivery id (UUID), the same on every retry of one delivery: receivers de-duplicate on it. */
  id: 'x-webhook-id',
  /** Unix seconds when this attempt was signed (a new value on every retry). */
  timestamp: 'x-webhook-timestamp',
  /** `v1=<hex HMAC-SHA256>`; several space- or comma-separated entries are allowed (secret rotation). */
  signature: 'x-webhook-signature',
} as const;

/** Signature scheme version: the prefix of each entry in X-Webhook-Signature. */
export const WEBHOOK_SIGNATURE_VERSION = 'v1';

/** Default replay window of {@link verifyWebhookSignature}: 5 minutes either side of `now`. */
export const DEFAULT_TOLERANCE_SEC = 300;

/**
 * The hex HMAC-SHA256 of `${timestamp}.${body}` under `secret`.
 *
 * @param timestamp unix seconds, as sent in X-Webhook-Timestamp.
 * @param body the raw request body (a string is taken as UTF-8).
 */
export function computeWebhookSignature(secret: string, timestamp: number | string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`, 'utf8').update(body).digest('hex');
}

/** The X-Webhook-Signature header value for one attempt: `v1=<hex>`. */
export function signWebhook(secret: string, timestamp: number, body: string | Buffer): string {
  return `${WEBHOOK_SIGNATURE_VERSION}=${computeWebhookSignature(secret, timestamp, body)}`;
}

/** Input of {@link verifyWebhookSignature}. */
export interface VerifyWebhookInput {
  /** The shared secret (WEBHOOK_SECRET of the gateway). */
  secret: string;
  /** X-Webhook-Timestamp as received: decimal unix seconds. */
  timestamp: string | number | undefined;
  /**
   * The raw request body exactly as received. Verify before parsing: JSON re-serialized by the
   * receiver may differ byte for byte (key order, spacing, escapes) and would not verify.
   */
  body: string | Buffer;
  /** X-Webhook-Signature as received: one or more `v1=<hex>` entries. */
  signature: string | undefined;
  /** Accepted distance between `timestamp` and `now`, in seconds (default 300). */
  toleranceSec?: number;
  /** Current time in unix seconds (default: the system clock). */
  now?: number;
}

/**
 * Verifies one webhook request: the timestamp is within `toleranceSec` of `now` (replay
 * protection) and one `v1=` entry of the signature header matches the HMAC of
 * `${timestamp}.${body}` under `secret` (compared in constant time).
 *
 * @returns true only when both hold; false for a missing, malformed, stale or forged request.
 *   Never throws.
 */
export function verifyWebhookSignature(input: VerifyWebhookInput): boolean {
  const { secret, body, signature } = input;
  const tolerance = input.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  const now = input.now ?? Math.floor(Date.now() / 1000);
  const timestamp = String(input.timestamp ?? '');
  if (!secret || !signature || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(now - Number(timestamp)) > tolerance) return false;
  const expected = Buffer.from(computeWebhookSignature(secret, timestamp, body), 'hex');
  return signature
    .split(/[\s,]+/)
    .filter((entry) => entry.startsWith(`${WEBHOOK_SIGNATURE_VERSION}=`))
    .some((entry) => {
      const hex = entry.slice(WEBHOOK_SIGNATURE_VERSION.length + 1);
      if (!/^[0-9a-f]{64}$/i.test(hex)) return false;
      return timingSafeEqual(Buffer.from(hex, 'hex'), expected);
    });
}
