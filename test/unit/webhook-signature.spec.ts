import { createHmac } from 'node:crypto';
import { computeWebhookSignature, signWebhook, verifyWebhookSignature } from '../../src/webhooks/webhook-signature.js';
import { completedPayload, failedPayload, webhookDeliveryId, WEBHOOK_TEXT_LIMIT } from '../../src/webhooks/webhook.constants.js';

const secret = 'whsec-test-0123456789abcdef';
const body = JSON.stringify({ event: 'transcription.completed', job_id: 'j1', text: 'héllo wörld' });
const ts = 1_763_810_000;

describe('webhook signature (v1 = hex HMAC-SHA256 of "timestamp.body")', () => {
  it('is the documented HMAC, so receivers in any language can compute it', () => {
    const expected = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
    expect(computeWebhookSignature(secret, ts, body)).toBe(expected);
    expect(signWebhook(secret, ts, body)).toBe(`v1=${expected}`);
    // Bytes and the same text as a string sign alike (UTF-8).
    expect(computeWebhookSignature(secret, String(ts), Buffer.from(body, 'utf8'))).toBe(expected);
  });

  it('verifies a genuine request within the tolerance, on either side of now', () => {
    const signature = signWebhook(secret, ts, body);
    expect(verifyWebhookSignature({ secret, timestamp: String(ts), body, signature, now: ts })).toBe(true);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body: Buffer.from(body), signature, now: ts + 300 })).toBe(true);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body, signature, now: ts - 300 })).toBe(true);
  });

  it('rejects timestamps outside the tolerance (replays of captured requests)', () => {
    const signature = signWebhook(secret, ts, body);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body, signature, now: ts + 301 })).toBe(false);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body, signature, now: ts - 301 })).toBe(false);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body, signature, now: ts + 3600, toleranceSec: 3600 })).toBe(true);
  });

  it('rejects a replay re-dated with a new timestamp: the timestamp is part of the signed content', () => {
    const signature = signWebhook(secret, ts, body);
    expect(verifyWebhookSignature({ secret, timestamp: ts + 1000, body, signature, now: ts + 1000 })).toBe(false);
  });

  it('rejects a tampered body, a wrong secret and re-serialized JSON', () => {
    const signature = signWebhook(secret, ts, body);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body: body.replace('j1', 'j2'), signature, now: ts })).toBe(false);
    expect(verifyWebhookSignature({ secret: `${secret}x`, timestamp: ts, body, signature, now: ts })).toBe(false);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body: JSON.stringify(JSON.parse(body), null, 2), signature, now: ts })).toBe(false);
  });

  it('rejects missing or malformed headers without throwing', () => {
    const hex = computeWebhookSignature(secret, ts, body);
    for (const [timestamp, signature] of [
      [undefined, `v1=${hex}`],
      ['', `v1=${hex}`],
      ['17638e5', `v1=${hex}`],
      [`${ts}.5`, `v1=${hex}`],
      [String(ts), undefined],
      [String(ts), ''],
      [String(ts), hex],
      [String(ts), `v0=${hex}`],
      [String(ts), `v1=${hex.slice(0, 63)}`],
      [String(ts), `v1=${hex}00`],
      [String(ts), `v1=${'z'.repeat(64)}`],
    ] as const) {
      expect(verifyWebhookSignature({ secret, timestamp, body, signature, now: ts })).toBe(false);
    }
    expect(verifyWebhookSignature({ secret: '', timestamp: ts, body, signature: signWebhook('', ts, body), now: ts })).toBe(false);
  });

  it('accepts any matching entry of a multi-entry header (secret rotation)', () => {
    const old = signWebhook('whsec-old-secret-0000000000', ts, body);
    const current = signWebhook(secret, ts, body);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body, signature: `${old} ${current}`, now: ts })).toBe(true);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body, signature: `${current},${old}`, now: ts })).toBe(true);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body, signature: old, now: ts })).toBe(false);
    expect(verifyWebhookSignature({ secret, timestamp: ts, body, signature: current.toUpperCase().replace('V1=', 'v1='), now: ts })).toBe(true);
  });
});

describe('webhook delivery id and payloads', () => {
  it('derives one stable UUID per (job, event)', () => {
    const a = webhookDeliveryId('job-1', 'transcription.completed');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(webhookDeliveryId('job-1', 'transcription.completed')).toBe(a);
    expect(webhookDeliveryId('job-1', 'transcription.failed')).not.toBe(a);
    expect(webhookDeliveryId('job-2', 'transcription.completed')).not.toBe(a);
  });

  it('cuts long texts and says so; failed payloads carry only code and message', () => {
    const long = completedPayload({ jobId: 'j', transcriptId: 't', segmentsCount: 3, durationSec: 12.5, text: 'a'.repeat(WEBHOOK_TEXT_LIMIT + 1) });
    expect(long.result).toEqual({ segments_count: 3, duration: 12.5, text: 'a'.repeat(WEBHOOK_TEXT_LIMIT), text_truncated: true });
    expect(completedPayload({ jobId: 'j', transcriptId: 't', segmentsCount: 1, durationSec: 1, text: 'hi' }).result?.text_truncated).toBe(false);
    // The duration is rounded to milliseconds, as in the status and result answers.
    expect(completedPayload({ jobId: 'j', transcriptId: 't', segmentsCount: 1, durationSec: 2.7999375, text: 'hi' }).result?.duration).toBe(2.8);
    const failed = failedPayload({ jobId: 'j', transcriptId: null, error: { code: 'ENGINE_UNAVAILABLE', message: 'down', retryable: true, engine: 'riva' } as Record<string, unknown> });
    expect(failed).toMatchObject({ event: 'transcription.failed', status: 'failed', error: { code: 'ENGINE_UNAVAILABLE', message: 'down' } });
    expect(Object.keys(failed.error!)).toEqual(['code', 'message']);
    expect(failedPayload({ jobId: 'j', transcriptId: null, error: null }).error).toEqual({ code: 'INTERNAL', message: 'transcription failed' });
  });
});
