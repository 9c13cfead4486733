import { createServer, type Server } from 'node:http';
import { createReadStream, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fixture, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';


const KEY = 'k-test-0123456789abcdef';
const OTHER = 'k-other-0123456789abcdef';

async function post(url: string, fields: Record<string, string>, headers: Record<string, string>, file?: string) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (file) form.append('file', new Blob([readFileSync(file)]), 'goforward.wav');
  const res = await fetch(url, { method: 'POST', body: form, headers });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

describe('access: API keys, rate limits, submission by URL, OpenAPI', () => {
  let gw: TestGateway;
  let audioServer: Server;
  let audioBase: string;
  const submitUrl = () => `${gw.url}/api/transcribe/jobs/transcribe`;

  beforeAll(async () => {
    audioServer = createServer((req, res) => {
      if (req.url === '/goforward.wav') {
        res.writeHead(200, { 'Content-Type': 'audio/wav' });
        createReadStream(fixture('goforward.wav')).pipe(res);
      } else if (req.url === '/moved') {
        res.writeHead(302, { Location: '/goforward.wav' }).end();
      } else {
        res.writeHead(404).end('no');
      }
    });
    await new Promise<void>((r) => audioServer.listen(0, '127.0.0.1', r));
    audioBase = `http://127.0.0.1:${(audioServer.address() as AddressInfo).port}`;
    gw = await startGateway(testConfig({ API_KEYS: `${KEY},${OTHER}`, RATE_LIMIT_SUBMIT_PER_MINUTE: '5', ALLOW_PRIVATE_URLS: 'true' }));
  });
  afterAll(async () => {
    await gw?.close();
    audioServer?.close();
  });

  it('refuses requests without a key (401) or with a wrong one (403) on every job endpoint, SSE included', async () => {
    const id = '3f1e0c9a-7a53-4f43-9f7e-2b1d8a6c0e11';
    for (const path of [`/api/transcribe/jobs/status/${id}`, `/api/transcribe/jobs/stream/${id}`, `/api/transcribe/jobs/result/${id}`, '/api/transcribe/jobs/engines', '/api/transcribe/contexts']) {
      const none = await fetch(`${gw.url}${path}`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await none.json()).toMatchObject({ code: 'API_KEY_REQUIRED' });
      const wrong = await fetch(`${gw.url}${path}`, { headers: { Authorization: 'Bearer not-a-key' } });
      expect(wrong.status).toBe(403);
      expect(await wrong.json()).toMatchObject({ code: 'API_KEY_INVALID' });
    }
    const bad = await post(submitUrl(), {}, {}, fixture('goforward.wav'));
    expect(bad.status).toBe(401);
  });

  it('accepts Bearer and x-api-key, keeps health public, and streams with a key', async () => {
    expect((await fetch(`${gw.url}/health/live`)).status).toBe(200);
    expect((await fetch(`${gw.url}/api/transcribe/jobs/engines`, { headers: { 'x-api-key': OTHER } })).status).toBe(200);
    const res = await post(submitUrl(), {}, { Authorization: `Bearer ${KEY}` }, fixture('goforward.wav'));
    expect(res.status).toBe(202);
    const events = await fetch(`${gw.url}/api/transcribe/jobs/stream/${res.body.job_id}`, { headers: { Authorization: `Bearer ${KEY}` } });
    expect(events.status).toBe(200);
    await events.body?.cancel();
  });

  it('fetches audio by URL (redirect followed) and refuses bad URLs with clear 4xx', async () => {
    const auth = { Authorization: `Bearer ${KEY}` };
    const ok = await post(submitUrl(), { audio_url: `${audioBase}/moved` }, auth);
    expect(ok.status).toBe(202);
    const job = await fetch(`${gw.url}/api/transcribe/jobs/result/${ok.body.job_id}`, { headers: auth });
    expect([200, 409]).toContain(job.status);
    const [row] = await gw.db.query('SELECT filename, size_bytes FROM transcripts WHERE id = $1', [ok.body.transcript_id]);
    expect(row).toMatchObject({ filename: 'goforward.wav', size_bytes: String(readFileSync(fixture('goforward.wav')).length) });

    expect(await post(submitUrl(), { audio_url: 'ftp://example.com/a.wav' }, auth)).toMatchObject({ status: 400, body: { code: 'URL_INVALID' } });
    expect(await post(submitUrl(), { audio_url: `${audioBase}/missing.wav` }, auth)).toMatchObject({ status: 422, body: { code: 'URL_HTTP_ERROR' } });
    const both = await post(submitUrl(), { audio_url: `${audioBase}/goforward.wav` }, auth, fixture('goforward.wav'));
    expect(both).toMatchObject({ status: 400, body: { code: 'INVALID_OPTION' } });
  });

  it('answers 429 with Retry-After past the per-key submission limit, counting keys apart', async () => {
    let limited: { status: number; headers: Headers; body: Record<string, unknown> } | undefined;
    for (let i = 0; i < 8 && !limited; i++) {
      const res = await post(submitUrl(), {}, { Authorization: `Bearer ${KEY}` }, fixture('goforward.wav'));
      if (res.status === 429) limited = res;
    }
    expect(limited).toBeDefined();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited!.body).toMatchObject({ code: 'RATE_LIMITED' });
    // Another key has its own budget.
    expect((await post(submitUrl(), {}, { 'x-api-key': OTHER }, fixture('goforward.wav'))).status).toBe(202);
  });

  it('publishes the OpenAPI document with every job endpoint', async () => {
    const doc = (await (await fetch(`${gw.url}/docs-json`)).json()) as { paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
    for (const path of ['/api/transcribe/jobs/transcribe', '/api/transcribe/jobs/transcribe/{engine}', '/api/transcribe/jobs/status/{job_id}', '/api/transcribe/jobs/stream/{job_id}', '/api/transcribe/jobs/result/{job_id}', '/api/transcribe/jobs/{job_id}', '/api/transcribe/jobs/engines', '/api/transcribe/contexts', '/health/ready']) {
      expect(doc.paths).toHaveProperty([path]);
    }
    expect(doc.components.schemas).toHaveProperty('JobResultSchema');
    expect(doc.components.schemas).toHaveProperty('SubmitJobForm');
    expect((await fetch(`${gw.url}/docs`)).status).toBe(200);
  });

  it('refuses private addresses unless ALLOW_PRIVATE_URLS is set', async () => {
    const strict = await startGateway(testConfig());
    try {
      const res = await post(`${strict.url}/api/transcribe/jobs/transcribe`, { audio_url: `${audioBase}/goforward.wav` }, {});
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'URL_FORBIDDEN_ADDRESS' });
    } finally {
      await strict.close();
    }
  });
});

