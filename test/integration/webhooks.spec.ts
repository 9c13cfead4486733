import { BullModule } from '@nestjs/bullmq';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { redisConnection } from '../../src/common/redis.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { ConfigModule } from '../../src/config/config.module.js';
import { dataSourceOptions } from '../../src/database/data-source.js';
import { verifyWebhookSignature, WEBHOOK_HEADERS } from '../../src/webhooks/webhook-signature.js';
import { validateCallbackUrl } from '../../src/webhooks/callback-url.js';
import { completedPayload, failedPayload, webhookDeliveryId } from '../../src/webhooks/webhook.constants.js';
import { WebhookError } from '../../src/webhooks/webhook.errors.js';
import { WebhookQueue } from '../../src/webhooks/webhook.queue.js';
import { WebhookSender } from '../../src/webhooks/webhook.sender.js';
import { WebhookService } from '../../src/webhooks/webhook.service.js';
import { WebhooksModule } from '../../src/webhooks/webhooks.module.js';
import { TEST_DATABASE_URL, TEST_REDIS_URL, testConfig } from '../support/env.js';

/** What the receiver saw of one request. */
interface Received {
  headers: IncomingHttpHeaders;
  /** Raw body, exactly as sent. */
  body: string;
  url: string;
}

/**
 * A real HTTP webhook receiver on 127.0.0.1. Each path answers from its own script of statuses
 * (the last one repeats); `hang` paths never answer.
 */
async function startReceiver() {
  const received = new Map<string, Received[]>();
  const scripts = new Map<string, number[]>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const list = received.get(path) ?? [];
      list.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), url: path });
      received.set(path, list);
      if (path.startsWith('/hang')) return;
      const script = scripts.get(path) ?? [200];
      const status = script[Math.min(list.length - 1, script.length - 1)];
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status >= 300 ? `receiver says ${status}\n  (scripted)` : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path: string, statuses: number[] = [200]) => {
      scripts.set(path, statuses);
      return `http://127.0.0.1:${port}${path}`;
    },
    port,
    received: (path: string) => received.get(path) ?? [],
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Polls `probe` every 50 ms until it returns a value other than undefined, or fails after `timeoutMs`. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface DeliveryRow {
  delivery_id: string;
  job_id: string;
  transcript_id: string | null;
  url: string;
  event: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  delivered: boolean;
}

const SECRET = 'whsec-integration-0123456789';

describe('webhooks (real receiver, BullMQ on Redis, webhook_deliveries in Postgres)', () => {
  let app: INestApplication;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let webhooks: WebhookService;
  let queue: WebhookQueue;
  let db: DataSource;
  let config: AppConfig;

  const rows = (deliveryId: string): Promise<DeliveryRow[]> =>
    db.query(`SELECT * FROM webhook_deliveries WHERE delivery_id = $1 ORDER BY attempt`, [deliveryId]);
  const finalState = (deliveryId: string) =>
    waitFor(`delivery ${deliveryId} to finish`, async () => {
      const s = await queue.get(deliveryId);
      return s && (s.state === 'completed' || s.state === 'failed') ? s : undefined;
    });

  beforeAll(async () => {
    receiver = await startReceiver();
    config = testConfig({ WEBHOOK_SECRET: SECRET, WEBHOOK_BACKOFF_MS: '20', WEBHOOK_MAX_ATTEMPTS: '4', WEBHOOK_TIMEOUT_MS: '2000', ALLOW_PRIVATE_URLS: 'true' });
    const moduleRef = await Test.createTestingModule({
      imports: [
        ConfigModule.forRoot(config),
        TypeOrmModule.forRoot(dataSourceOptions(TEST_DATABASE_URL)),
        BullModule.forRoot({ connection: redisConnection(TEST_REDIS_URL), prefix: config.QUEUE_PREFIX }),
        WebhooksModule.register({ worker: true }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    webhooks = app.get(WebhookService);
    queue = app.get(WebhookQueue);
    db = app.get(DataSource);
  });

  afterAll(async () => {
    await app?.close();
    await receiver?.close();
  });

  it('retries 500s with backoff until a 200, recording every attempt; each attempt is signed and keeps its X-Webhook-Id', async () => {
    const jobId = randomUUID();
    const transcriptId = randomUUID();
    const url = receiver.url(`/flaky-${jobId}`, [500, 500, 200]);
    const payload = completedPayload({ jobId, transcriptId, segmentsCount: 2, durationSec: 4.25, text: 'hello world' });
    const { deliveryId } = await webhooks.enqueue({ jobId, transcriptId, url, event: 'transcription.completed', payload });
    expect(deliveryId).toBe(webhookDeliveryId(jobId, 'transcription.completed'));

    const state = await finalState(deliveryId);
    expect(state).toMatchObject({ state: 'completed', attemptsMade: 3 });

    const attempts = await rows(deliveryId);
    expect(attempts.map((r) => [r.attempt, r.status_code, r.delivered])).toEqual([[1, 500, false], [2, 500, false], [3, 200, true]]);
    for (const r of attempts) {
      expect(r).toMatchObject({ job_id: jobId, transcript_id: transcriptId, url, event: 'transcription.completed' });
      expect(r.duration_ms).toBeGreaterThanOrEqual(0);
    }
    expect(attempts[0].error).toBe('HTTP 500: receiver says 500 (scripted)');
    expect(attempts[2].error).toBeNull();

    const requests = receiver.received(`/flaky-${jobId}`);
    expect(requests).toHaveLength(3);
    for (const req of requests) {
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.headers['user-agent']).toBe('transcription-gateway');
      expect(req.headers[WEBHOOK_HEADERS.id]).toBe(deliveryId);
      const timestamp = req.headers[WEBHOOK_HEADERS.timestamp] as string;
      const signature = req.headers[WEBHOOK_HEADERS.signature] as string;
      expect(signature).toMatch(/^v1=[0-9a-f]{64}$/);
      expect(verifyWebhookSignature({ secret: SECRET, timestamp, body: req.body, signature })).toBe(true);
      expect(verifyWebhookSignature({ secret: 'another-secret-0123456789', timestamp, body: req.body, signature })).toBe(false);
      expect(verifyWebhookSignature({ secret: SECRET, timestamp, body: req.body, signature, now: Number(timestamp) + 301 })).toBe(false);
      expect(JSON.parse(req.body)).toEqual({ ...payload, id: deliveryId });
    }
    expect(JSON.parse(requests[0].body)).toMatchObject({
      event: 'transcription.completed',
      job_id: jobId,
      transcript_id: transcriptId,
      status: 'completed',
      result: { segments_count: 2, duration: 4.25, text: 'hello world', text_truncated: false },
    });
  });

  it('stops at once on 410 Gone: one attempt, recorded, and the delivery fails for good', async () => {
    const jobId = randomUUID();
    const url = receiver.url(`/gone-${jobId}`, [410, 200]);
    const { deliveryId } = await webhooks.enqueue({
      jobId,
      transcriptId: null,
      url,
      event: 'transcription.failed',
      payload: failedPayload({ jobId, transcriptId: null, error: { code: 'AUDIO_NO_STREAM', message: 'no audio stream' } }),
    });
    const state = await finalState(deliveryId);
    expect(state).toMatchObject({ state: 'failed', attemptsMade: 1 });
    const attempts = await rows(deliveryId);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ attempt: 1, status_code: 410, delivered: false, event: 'transcription.failed', transcript_id: null });
    expect(receiver.received(`/gone-${jobId}`)).toHaveLength(1);
    expect(JSON.parse(receiver.received(`/gone-${jobId}`)[0].body)).toMatchObject({ status: 'failed', error: { code: 'AUDIO_NO_STREAM', message: 'no audio stream' } });
  });

  it('gives up after WEBHOOK_MAX_ATTEMPTS failures, network errors included', async () => {
    const jobId = randomUUID();
    const url = receiver.url(`/down-${jobId}`, [503]);
    const { deliveryId } = await webhooks.enqueue({ jobId, transcriptId: null, url, event: 'transcription.failed', payload: failedPayload({ jobId, transcriptId: null, error: null }) });
    expect(await finalState(deliveryId)).toMatchObject({ state: 'failed', attemptsMade: 4 });
    expect((await rows(deliveryId)).map((r) => r.status_code)).toEqual([503, 503, 503, 503]);

    const refusedJob = randomUUID();
    const closedPort = await new Promise<number>((resolve) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const second = await webhooks.enqueue({ jobId: refusedJob, transcriptId: null, url: `http://127.0.0.1:${closedPort}/`, event: 'transcription.failed', payload: failedPayload({ jobId: refusedJob, transcriptId: null, error: null }) });
    expect(await finalState(second.deliveryId)).toMatchObject({ state: 'failed', attemptsMade: 4 });
    const refused = await rows(second.deliveryId);
    expect(refused).toHaveLength(4);
    for (const r of refused) expect(r).toMatchObject({ status_code: null, delivered: false, error: expect.stringContaining('ECONNREFUSED') });
  });

  it('sends one webhook when the same final event of a job is enqueued twice', async () => {
    const jobId = randomUUID();
    const url = receiver.url(`/twice-${jobId}`);
    const payload = completedPayload({ jobId, transcriptId: null, segmentsCount: 0, durationSec: 1, text: '' });
    const first = await webhooks.enqueue({ jobId, transcriptId: null, url, event: 'transcription.completed', payload });
    const second = await webhooks.enqueue({ jobId, transcriptId: null, url, event: 'transcription.completed', payload });
    expect(second.deliveryId).toBe(first.deliveryId);
    expect(await finalState(first.deliveryId)).toMatchObject({ state: 'completed', attemptsMade: 1 });
    expect(await rows(first.deliveryId)).toHaveLength(1);
    expect(receiver.received(`/twice-${jobId}`)).toHaveLength(1);
  });

  it('checks callback URLs at submission against the configuration', async () => {
    await expect(webhooks.checkCallbackUrl(receiver.url('/x'))).resolves.toBe(receiver.url('/x'));
    await expect(webhooks.checkCallbackUrl('gopher://127.0.0.1/')).rejects.toBeInstanceOf(WebhookError);
  });
});

describe('WebhookSender (outbound HTTP)', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const sender = new WebhookSender();
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });

  it('refuses private addresses without ALLOW_PRIVATE_URLS, also when a host name resolves to one, and sends nothing', async () => {
    const literal = await sender.post(receiver.url('/private'), '{}', {}, { timeoutMs: 2000, allowPrivate: false });
    expect(literal).toMatchObject({ statusCode: null, refused: true, error: expect.stringContaining('127.0.0.1') });
    const named = await sender.post(`http://localhost:${receiver.port}/private`, '{}', {}, { timeoutMs: 2000, allowPrivate: false });
    expect(named).toMatchObject({ statusCode: null, refused: true, error: expect.stringMatching(/refused to connect to (127\.0\.0\.1|::1), a loopback address/) });
    expect(receiver.received('/private')).toHaveLength(0);

    const allowed = await sender.post(`http://localhost:${receiver.port}/private`, '{"a":1}', { 'Content-Type': 'application/json' }, { timeoutMs: 2000, allowPrivate: true });
    expect(allowed).toMatchObject({ statusCode: 200, refused: false, error: null });
    expect(receiver.received('/private')).toEqual([expect.objectContaining({ body: '{"a":1}' })]);
  });

  it.each([
    ['127.0.0.1', 4, 'loopback'],
    ['::ffff:127.0.0.1', 6, 'loopback'],
    ['169.254.169.254', 4, 'link-local'],
  ])('refuses a callback host that resolved public at submission and resolves to %s at delivery (DNS rebinding)', async (address, family, kind) => {
    const answers = [[{ address: '93.184.215.14', family: 4 }], [{ address, family }]];
    const rebinding = async () => answers.shift() ?? [];
    const url = `http://hooks.rebind.test:${receiver.port}/rebind`;
    // At submission the name is public, so the URL is accepted...
    await expect(validateCallbackUrl(url, { secretConfigured: true, allowPrivate: false, resolve: rebinding })).resolves.toBe(url);
    // ...and the delivery is refused by the check at connect time, with nothing sent.
    const outcome = await sender.post(url, '{}', {}, { timeoutMs: 2000, allowPrivate: false, resolve: rebinding });
    expect(outcome).toMatchObject({ statusCode: null, refused: true, error: expect.stringContaining(`a ${kind} address`) });
    expect(outcome.error).toContain('hooks.rebind.test resolves to it');
    expect(answers).toEqual([]);
    expect(receiver.received('/rebind')).toHaveLength(0);
  });

  it('refuses unspecified addresses even with ALLOW_PRIVATE_URLS (0.0.0.0 would reach the local host)', async () => {
    const outcome = await sender.post(`http://0.0.0.0:${receiver.port}/zero`, '{}', {}, { timeoutMs: 2000, allowPrivate: true });
    expect(outcome).toMatchObject({ statusCode: null, refused: true });
    expect(receiver.received('/zero')).toHaveLength(0);
  });

  it('counts a receiver that does not answer within the timeout as a failed attempt', async () => {
    const outcome = await sender.post(receiver.url('/hang'), '{}', {}, { timeoutMs: 300, allowPrivate: true });
    expect(outcome).toMatchObject({ statusCode: null, refused: false, error: 'no complete response within 300 ms (WEBHOOK_TIMEOUT_MS)' });
  });

  it('does not follow redirects', async () => {
    const outcome = await sender.post(receiver.url('/moved', [302]), '{}', {}, { timeoutMs: 2000, allowPrivate: true });
    expect(outcome).toMatchObject({ statusCode: 302, error: null });
    expect(receiver.received('/moved')).toHaveLength(1);
  });
});
