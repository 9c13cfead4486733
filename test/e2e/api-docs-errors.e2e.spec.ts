import { createReadStream } from 'node:fs';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { fixture, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

/**
 * The native API's error bodies and its OpenAPI document, against the real gateway with API keys
 * on: every validation failure is one string `message` (plus `errors` per field), every protected
 * operation in `/docs-json` declares the key's schemes (and a request built from those schemes
 * gets through), and durations read the same (3 decimals) in status, result and the OpenAI route.
 */

interface OpenApiOperation { security?: Record<string, string[]>[] }
interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { securitySchemes: Record<string, { type: string; scheme?: string; bearerFormat?: string; in?: string; name?: string }> };
  security?: unknown;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
/** Routes that ApiKeyGuard lets through without a key (`@Public()`). */
const PUBLIC_PATHS = /^\/(health|metrics)(\/|$)/;

describe('error bodies and the OpenAPI document of a keyed gateway', () => {
  let gw: TestGateway;
  const key = `gw-key-${randomUUID()}`;
  const auth = { Authorization: `Bearer ${key}` };

  beforeAll(async () => {
    gw = await startGateway(testConfig({ API_KEYS: key }));
  });
  afterAll(async () => gw?.close());

  const submitForm = async (fields: Record<string, string>) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    form.append('file', new Blob([new Uint8Array(0)]), 'a.wav');
    const res = await fetch(`${gw.url}/api/transcribe/jobs/transcribe`, { method: 'POST', body: form, headers: auth });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('answers an unknown form field with one message naming the field and the accepted ones', async () => {
    const res = await submitForm({ foo: 'bar' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request', code: 'VALIDATION_FAILED' });
    expect(typeof res.body.message).toBe('string');
    expect(res.body.message).toMatch(/^unknown field 'foo'; accepted fields: (\w+, )+\w+$/);
    expect(res.body.message).toMatch(/\bengine\b.*\blanguage\b/);
    expect(res.body.errors).toEqual([{ field: 'foo', message: res.body.message }]);
  });

  it('joins several bad fields into one string, one message per field', async () => {
    const res = await submitForm({ language: 'English!', min_speakers: 'two' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.message).toBe("language must be a language code such as 'en' or 'en-US'; min_speakers must be an integer between 1 and 20");
    expect(res.body.errors).toEqual([
      { field: 'language', message: "language must be a language code such as 'en' or 'en-US'" },
      { field: 'min_speakers', message: 'min_speakers must be an integer between 1 and 20' },
    ]);
  });

  it('declares security on every protected operation, none on public ones, and no JWT bearerFormat', async () => {
    // The document and the UI are public: they describe the API and hold no data.
    const docs = await fetch(`${gw.url}/docs`);
    expect(docs.status).toBe(200);
    const res = await fetch(`${gw.url}/docs-json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as OpenApiDocument;
    expect(doc.components.securitySchemes).toEqual({
      bearer: { type: 'http', scheme: 'bearer', description: expect.any(String) },
      'x-api-key': { type: 'apiKey', in: 'header', name: 'x-api-key', description: expect.any(String) },
    });
    expect(doc.security).toBeUndefined();
    const checked = { protected: 0, public: 0 };
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        if (!HTTP_METHODS.includes(method)) continue;
        if (PUBLIC_PATHS.test(path)) {
          expect([method, path, operation.security ?? []]).toEqual([method, path, []]);
          checked.public++;
        } else {
          expect([method, path, operation.security]).toEqual([method, path, [{ bearer: [] }, { 'x-api-key': [] }]]);
          checked.protected++;
        }
      }
    }
    // Jobs, engines, contexts and the OpenAI routes; health and metrics.
    expect(checked.protected).toBeGreaterThanOrEqual(15);
    expect(checked.public).toBeGreaterThanOrEqual(3);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/transcribe/jobs/engines', '/v1/audio/transcriptions', '/v1/models']));
  });

  it('lets a Try-it-out request built from either scheme of the document through', async () => {
    const doc = (await (await fetch(`${gw.url}/docs-json`)).json()) as OpenApiDocument;
    const operation = doc.paths['/api/transcribe/jobs/engines'].get;
    const url = `${gw.url}/api/transcribe/jobs/engines`;
    expect((await fetch(url)).status).toBe(401);
    for (const requirement of operation.security!) {
      const [name] = Object.keys(requirement);
      const scheme = doc.components.securitySchemes[name];
      // What Swagger UI sends for each scheme once "Authorize" holds the key.
      const headers: Record<string, string> = scheme.type === 'http' && scheme.scheme === 'bearer' ? { Authorization: `Bearer ${key}` } : { [scheme.name!]: key };
      expect(scheme.type === 'apiKey' ? scheme.in : 'header').toBe('header');
      const answer = await fetch(url, { headers });
      expect([name, answer.status]).toEqual([name, 200]);
    }
  });

  it('reports the duration with 3 decimals, the same in status, SSE summary, result and verbose_json', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
    const { data, response } = await client.audio.transcriptions.create({ file: createReadStream(fixture('goforward.wav')), model: 'pocketsphinx', response_format: 'verbose_json' }).withResponse();
    const jobId = response.headers.get('x-transcription-job-id')!;
    const status = (await (await fetch(`${gw.url}/api/transcribe/jobs/status/${jobId}`, { headers: auth })).json()) as { result: { duration: number } };
    const result = (await (await fetch(`${gw.url}/api/transcribe/jobs/result/${jobId}`, { headers: auth })).json()) as { duration: number };
    const [row] = await gw.db.query('SELECT t.duration_sec FROM transcripts t JOIN transcript_jobs j ON j.transcript_id = t.id WHERE j.job_id = $1', [jobId]);
    const stored = Number(row.duration_sec);
    const expected = Math.round(stored * 1000) / 1000;
    expect(stored).toBeGreaterThan(1);
    expect(result.duration).toBe(expected);
    expect(status.result.duration).toBe(expected);
    expect(data.duration).toBe(expected);
    expect(String(expected)).toMatch(/^\d+(\.\d{1,3})?$/);
  });
});
