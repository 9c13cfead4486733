import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { ContextsModule } from '../../src/contexts/contexts.module.js';
import { ContextNotFoundError, ContextsService, toWordBoosts, type ContextView } from '../../src/contexts/contexts.service.js';
import { dataSourceOptions } from '../../src/database/data-source.js';
import { ApiErrorFilter } from '../../src/common/api-error.filter.js';
import { createValidationPipe } from '../../src/common/request-validation.js';
import { TEST_DATABASE_URL, testConfig } from '../support/env.js';

/**
 * The contexts API over HTTP against the real Postgres (migrated). Mounted on its own — the
 * contexts module with TypeORM — with the same global ValidationPipe options as createApp and the
 * gateway's global ApiErrorFilter, so error bodies are those clients get.
 */
describe('contexts API /api/transcribe/contexts', () => {
  let app: INestApplication;
  let base: string;
  const created: string[] = [];

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [TypeOrmModule.forRoot({ ...dataSourceOptions(TEST_DATABASE_URL), migrationsRun: false }), ContextsModule],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    app.useGlobalPipes(createValidationPipe());
    app.useGlobalFilters(new ApiErrorFilter(testConfig()));
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/api/transcribe/contexts`;
  });
  afterAll(async () => {
    if (created.length) await app.get(DataSource).query(`DELETE FROM contexts WHERE id = ANY($1::uuid[])`, [created]);
    await app.close();
  });

  async function call<T = Record<string, unknown>>(method: string, path = '', body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }
  async function create(body: Record<string, unknown>): Promise<ContextView> {
    const res = await call<ContextView>('POST', '', body);
    expect(res.status).toBe(201);
    created.push(res.body.id);
    return res.body;
  }
  const expectValidation = (res: { status: number; body: Record<string, unknown> }, pattern: RegExp) => {
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request', code: 'VALIDATION_FAILED' });
    // One string; the fields one by one in `errors`.
    expect(typeof res.body.message).toBe('string');
    expect(res.body.message).toMatch(pattern);
    expect(res.body.errors).toEqual(expect.arrayContaining([{ field: expect.any(String), message: expect.stringMatching(pattern) }]));
  };

  it('creates (201) from plain and weighted phrases, with the default boost, and reads it back', async () => {
    const ctx = await create({ name: '  cardiology  ', language: 'en-US', phrases: ['echocardiogram', { phrase: ' atrial fibrillation ', boost: 60 }, { phrase: 'stent' }] });
    expect(ctx).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'cardiology',
      language: 'en-US',
      boost: 20,
      phrases: [
        { phrase: 'echocardiogram', boost: null },
        { phrase: 'atrial fibrillation', boost: 60 },
        { phrase: 'stent', boost: null },
      ],
    });
    expect(new Date(ctx.created_at).toISOString()).toBe(ctx.created_at);
    const got = await call<ContextView>('GET', `/${ctx.id}`);
    expect(got).toEqual({ status: 200, body: ctx });
    // One word-boost group per level, as the Riva adapter sends them (one SpeechContext each).
    expect(toWordBoosts(ctx)).toEqual([
      { phrases: ['echocardiogram', 'stent'], boost: 20 },
      { phrases: ['atrial fibrillation'], boost: 60 },
    ]);
  });

  it('ContextsService.get resolves a context and throws a coded ContextNotFoundError otherwise', async () => {
    const ctx = await create({ name: 'service', boost: -30, phrases: ['uh', 'um'] });
    const service = app.get(ContextsService);
    expect(toWordBoosts(await service.get(ctx.id))).toEqual([{ phrases: ['uh', 'um'], boost: -30 }]);
    await expect(service.get('7d1e2c50-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 'CONTEXT_NOT_FOUND', contextId: '7d1e2c50-0000-4000-8000-000000000000' });
    await expect(service.get('not-a-uuid')).rejects.toBeInstanceOf(ContextNotFoundError);
  });

  it('lists newest first with limit/offset pages', async () => {
    const a = await create({ name: 'page a', phrases: ['a'] });
    const b = await create({ name: 'page b', phrases: ['b'] });
    const c = await create({ name: 'page c', phrases: ['c'] });
    const first = await call<{ items: ContextView[]; total: number; limit: number; offset: number }>('GET', '?limit=2');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ limit: 2, offset: 0 });
    expect(first.body.total).toBeGreaterThanOrEqual(3);
    expect(first.body.items.map((i) => i.id)).toEqual([c.id, b.id]);
    const second = await call<{ items: ContextView[] }>('GET', '?limit=2&offset=2');
    expect(second.body.items[0].id).toBe(a.id);
    expectValidation(await call('GET', '?limit=0'), /limit must not be less than 1/);
    expectValidation(await call('GET', '?limit=500'), /limit must not be greater than 200/);
    expectValidation(await call('GET', '?page=2'), /^unknown field 'page'; accepted fields: limit, offset$/);
  });

  it('PUT replaces every field; PATCH changes only those given (language: null clears it)', async () => {
    const ctx = await create({ name: 'v1', language: 'en', boost: 50, phrases: [{ phrase: 'one', boost: 10 }] });
    const put = await call<ContextView>('PUT', `/${ctx.id}`, { name: 'v2', phrases: ['two', 'three'] });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ id: ctx.id, name: 'v2', language: null, boost: 20, phrases: [{ phrase: 'two', boost: null }, { phrase: 'three', boost: null }], created_at: ctx.created_at });
    expect(new Date(put.body.updated_at).getTime()).toBeGreaterThanOrEqual(new Date(ctx.updated_at).getTime());

    const patched = await call<ContextView>('PATCH', `/${ctx.id}`, { boost: 75.5, language: 'de-DE' });
    expect(patched.body).toMatchObject({ name: 'v2', language: 'de-DE', boost: 75.5, phrases: put.body.phrases });
    const cleared = await call<ContextView>('PATCH', `/${ctx.id}`, { language: null });
    expect(cleared.body).toMatchObject({ language: null, boost: 75.5 });
    expectValidation(await call('PATCH', `/${ctx.id}`, { name: null }), /name/);
    expectValidation(await call('PUT', `/${ctx.id}`, { name: 'no phrases' }), /phrases/);
  });

  it('DELETE answers 204, and the context is gone (404 CONTEXT_NOT_FOUND everywhere)', async () => {
    const ctx = await create({ name: 'temporary', phrases: ['x'] });
    const del = await call('DELETE', `/${ctx.id}`);
    expect(del).toEqual({ status: 204, body: null });
    const notFound = { statusCode: 404, error: 'Not Found', code: 'CONTEXT_NOT_FOUND', context_id: ctx.id, message: expect.stringContaining(ctx.id) };
    for (const [method, body] of [['GET'], ['DELETE'], ['PUT', { name: 'n', phrases: ['p'] }], ['PATCH', { boost: 1 }]] as const) {
      const res = await call(method, `/${ctx.id}`, body);
      expect([method, res.status, res.body]).toEqual([method, 404, notFound]);
    }
    expect(await call('GET', '/not-a-uuid')).toMatchObject({ status: 400, body: { code: 'BAD_REQUEST', message: expect.stringMatching(/UUID/) } });
  });

  it('rejects invalid bodies with 400 VALIDATION_FAILED, naming each problem', async () => {
    expectValidation(await call('POST', '', { phrases: ['a'] }), /name must be 1 to 200 characters/);
    expectValidation(await call('POST', '', { name: 'x'.repeat(201), phrases: ['a'] }), /name must be 1 to 200 characters/);
    expectValidation(await call('POST', '', { name: 'n', phrases: [] }), /phrases must contain at least 1 phrase/);
    expectValidation(await call('POST', '', { name: 'n', phrases: 'echo' }), /phrases must be an array/);
    expectValidation(await call('POST', '', { name: 'n', phrases: ['  '] }), /phrase must be 1 to 200 characters/);
    expectValidation(await call('POST', '', { name: 'n', phrases: ['p'.repeat(201)] }), /phrase must be 1 to 200 characters/);
    expectValidation(await call('POST', '', { name: 'n', phrases: ['a', { phrase: 'a' }] }), /must not repeat a phrase/);
    expectValidation(await call('POST', '', { name: 'n', phrases: [42] }), /phrases/);
    expectValidation(await call('POST', '', { name: 'n', phrases: [{ phrase: 'a', weight: 3 }] }), /unknown field 'phrases\.0\.weight'; accepted fields: boost, phrase/);
    expectValidation(await call('POST', '', { name: 'n', boost: 101, phrases: ['a'] }), /boost must not be greater than 100/);
    expectValidation(await call('POST', '', { name: 'n', phrases: [{ phrase: 'a', boost: -101 }] }), /phrases\.0\.boost must not be less than -100/);
    expectValidation(await call('POST', '', { name: 'n', phrases: [{ phrase: 'a', boost: '5' }] }), /boost must be a number/);
    expectValidation(await call('POST', '', { name: 'n', language: 'English', phrases: ['a'] }), /language must be a language code/);
    expectValidation(await call('POST', '', { name: 'n', phrases: Array.from({ length: 1001 }, (_, i) => `w${i}`) }), /at most 1000 phrases/);
    const full = await create({ name: 'full', boost: -100, phrases: Array.from({ length: 1000 }, (_, i) => ({ phrase: `w${i}`, boost: i % 2 ? 100 : null })) });
    expect(full.phrases).toHaveLength(1000);
    expect(toWordBoosts(full).map((g) => [g.boost, g.phrases.length])).toEqual([[-100, 500], [100, 500]]);
  });

  it('the table itself enforces the bounds for rows written outside the API', async () => {
    const db = app.get(DataSource);
    const insert = (phrases: string[], boosts: (number | null)[], boost = 20) =>
      db.query(`INSERT INTO contexts (name, phrases, phrase_boosts, boost) VALUES ('raw', $1, $2, $3) RETURNING id`, [phrases, boosts, boost]);
    await expect(insert(['a', 'b'], [null])).rejects.toThrow(/contexts_phrase_boosts_aligned_check/);
    await expect(insert([], [])).rejects.toThrow(/contexts_phrases_check/);
    await expect(insert(['a'], [150])).rejects.toThrow(/contexts_phrase_boosts_range_check/);
    await expect(insert(['a'], [null], -200)).rejects.toThrow(/contexts_boost_check/);
    const [row] = await insert(['a', 'b'], [null, 5]);
    created.push(row.id);
    expect((await app.get(ContextsService).get(row.id)).phrases).toEqual([{ phrase: 'a', boost: null }, { phrase: 'b', boost: 5 }]);
  });
});
