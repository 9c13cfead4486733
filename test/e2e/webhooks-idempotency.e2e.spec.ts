import { readFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildEngines } from '../../src/engines/engines.module.js';
import { verifyWebhookSignature } from '../../src/webhooks/webhook-signature.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { fixture, testConfig } from '../support/env.js';
import { FlakyEngine } from '../support/flaky-engine.js';

const SECRET = 'whsec-e2e-0123456789abcdef';

/** A real webhook receiver on 127.0.0.1 that answers 204 and resolves waiters per job id. */
async function startReceiver() {
  const got: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    got,
    waitFor: async (jobId: string, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = got.find((g) => JSON.parse(g.body).job_id === jobId);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no webhook for ${jobId}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

async function post(gw: TestGateway, fields: Record<string, string>, headers: Record<string, string> = {}, file = 'goforward.wav', route = '/api/transcribe/jobs/transcribe') {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([new Uint8Array(await readFile(fixture(file)))]), file);
  const res = await fetch(`${gw.url}${route}`, { method: 'POST', body: form, headers });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

describe('webhooks and Idempotency-Key through HTTP', () => {
  let gw: TestGateway;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver();
    const pocketsphinx = buildEngines({}).engines.find((e) => e.id === 'pocketsphinx')!;
    const broken = new FlakyEngine(pocketsphinx, 1000, { code: 'ENGINE_REJECTED', retryable: false }, 'whisperx');
    gw = await startGateway(testConfig({ WEBHOOK_SECRET: SECRET, ALLOW_PRIVATE_URLS: 'true', WEBHOOK_BACKOFF_MS: '50' }), [pocketsphinx, broken]);
  });
  afterAll(async () => {
    await gw?.close();
    await receiver?.close();
  });

  it('posts a signed transcription.completed webhook', async () => {
    const res = await post(gw, { callback_url: receiver.url });
    expect(res.status).toBe(202);
    const hook = await receiver.waitFor(res.body.job_id as string);
    expect(verifyWebhookSignature({ secret: SECRET, timestamp: hook.headers['x-webhook-timestamp'] as string, body: hook.body, signature: hook.headers['x-webhook-signature'] as string })).toBe(true);
    const payload = JSON.parse(hook.body);
    expect(payload).toMatchObject({ event: 'transcription.completed', status: 'completed', job_id: res.body.job_id, transcript_id: res.body.transcript_id, id: hook.headers['x-webhook-id'] });
    expect(payload.result.text.length).toBeGreaterThan(0);
    const rows = await gw.db.query(`SELECT attempt, status_code, delivered FROM webhook_deliveries WHERE job_id = $1`, [res.body.job_id]);
    expect(rows).toEqual([{ attempt: 1, status_code: 204, delivered: true }]);
  });

  it('posts transcription.failed once when the job fails for good', async () => {
    const res = await post(gw, { callback_url: receiver.url }, {}, 'goforward.wav', '/api/transcribe/jobs/transcribe/whisperx');
    expect(res.status).toBe(202);
    const hook = await receiver.waitFor(res.body.job_id as string);
    expect(JSON.parse(hook.body)).toMatchObject({ event: 'transcription.failed', status: 'failed', error: { code: 'ENGINE_REJECTED' } });
  });

  it('refuses bad callback URLs before storing anything', async () => {
    const res = await post(gw, { callback_url: 'ftp://example.com/x' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('CALLBACK_URL_INVALID');
  });

  it('returns the same job for the same Idempotency-Key and request; 409 for another request; 400 for a bad key', async () => {
    const key = `e2e-${Date.now()}`;
    const first = await post(gw, { language: 'en' }, { 'Idempotency-Key': key });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await post(gw, { language: 'en' }, { 'Idempotency-Key': key });
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const other = await post(gw, { language: 'de' }, { 'Idempotency-Key': key });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const bad = await post(gw, {}, { 'Idempotency-Key': 'k'.repeat(256) });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('IDEMPOTENCY_KEY_INVALID');
    // A failed request releases its key.
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(Buffer.from('not audio at all'))]), 'x.wav');
    const failed = await fetch(`${gw.url}/api/transcribe/jobs/transcribe`, { method: 'POST', body: form, headers: { 'Idempotency-Key': `${key}-2` } });
    expect(failed.status).toBe(415);
    const retried = await post(gw, {}, { 'Idempotency-Key': `${key}-2` });
    expect(retried.status).toBe(202);
  });
});
