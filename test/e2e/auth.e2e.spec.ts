import { Controller, Get, HttpCode, Module, Post, Sse, type DynamicModule, type INestApplication, type LoggerService, type MessageEvent } from '@nestjs/common';
import { APP_FILTER, NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { interval, map, take, type Observable } from 'rxjs';
import { ApiKeyLabel, Public } from '../../src/auth/api-key.guard.js';
import { AuthModule } from '../../src/auth/auth.module.js';
import { corsOptions } from '../../src/auth/cors.js';
import { SubmitRateLimit } from '../../src/auth/throttle.js';
import { AppConfig, parseEnv } from '../../src/config/app-config.js';
import { ConfigModule } from '../../src/config/config.module.js';
import { ApiErrorFilter } from '../../src/common/api-error.filter.js';
import { apiKeyLabel } from '../../src/metrics/metrics.service.js';
import { TEST_REDIS_URL } from '../support/env.js';

const KEY_A = 'ka-3f9c1e7d2b8a4605';
const KEY_B = 'kb-8e2d4c6a0f1b3957';
const KEY_C = 'kc-1a2b3c4d5e6f7081';
const SEED_TOKEN = 'seed-asr-token-77c1d0e5';
const WRONG = 'wrong-key-5d1c9b7e3a';

/** Routes like the gateway's: a public probe, a protected read, a submission and an SSE stream. */
@Controller('probe')
class ProbeController {
  @Public()
  @Get('health')
  health(): { status: string } {
    return { status: 'ok' };
  }

  @Get('protected')
  read(@ApiKeyLabel() label: string): { label: string } {
    return { label };
  }

  @Post('submit')
  @SubmitRateLimit()
  @HttpCode(202)
  submit(): { status: string } {
    return { status: 'queued' };
  }

  @Sse('events')
  events(): Observable<MessageEvent> {
    return interval(10).pipe(
      take(5),
      map((i) => ({ data: { i } })),
    );
  }
}

@Module({})
class ProbeAppModule {
  static forRoot(config: AppConfig): DynamicModule {
    // The gateway's error filter, global as in the app (JobsModule registers it): guard errors reach it.
    return {
      module: ProbeAppModule,
      imports: [ConfigModule.forRoot(config), AuthModule.register()],
      controllers: [ProbeController],
      providers: [{ provide: APP_FILTER, useClass: ApiErrorFilter }],
    };
  }
}

/** Every line Nest logs, as text, all levels. */
class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  private push(level: string, args: unknown[]) {
    this.lines.push(`${level} ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}`);
  }
  log(...args: unknown[]) {
    this.push('log', args);
  }
  error(...args: unknown[]) {
    this.push('error', args);
  }
  warn(...args: unknown[]) {
    this.push('warn', args);
  }
  debug(...args: unknown[]) {
    this.push('debug', args);
  }
  verbose(...args: unknown[]) {
    this.push('verbose', args);
  }
  fatal(...args: unknown[]) {
    this.push('fatal', args);
  }
}

interface ProbeApp {
  app: INestApplication;
  url: string;
  logs: CapturingLogger;
}

/** A probe app on the test Redis, under its own QUEUE_PREFIX so its rate-limit counts start from zero. */
async function startProbe(env: Record<string, string>): Promise<ProbeApp> {
  const prefix = `test-auth-${Math.random().toString(36).slice(2, 8)}`;
  const { value: config, problems } = parseEnv(AppConfig, { REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix, ...env });
  if (problems.length) throw new Error(problems.join('; '));
  const logs = new CapturingLogger();
  const app = await NestFactory.create(ProbeAppModule.forRoot(config), { logger: logs, abortOnError: false });
  const cors = corsOptions(config);
  if (cors !== false) app.enableCors(cors);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, logs };
}

async function call(url: string, init: RequestInit = {}) {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: res.status, headers: res.headers, body };
}

const bearer = (key: string) => ({ headers: { Authorization: `Bearer ${key}` } });
const xApiKey = (key: string) => ({ headers: { 'X-API-Key': key } });

/** Reads an SSE response to its end and returns the `data:` payloads. */
async function readEvents(res: Response): Promise<unknown[]> {
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => JSON.parse(l.slice(5)) as unknown);
}

describe('API keys (AuthModule in a Nest app over HTTP)', () => {
  let probe: ProbeApp;
  beforeAll(async () => {
    probe = await startProbe({ API_KEYS: `${KEY_A}, ${KEY_B}`, ASR_TOKEN: SEED_TOKEN, RATE_LIMIT_PER_MINUTE: '0', CORS_ORIGIN: 'https://app.example' });
  });
  afterAll(() => probe.app.close());

  it('answers 401 API_KEY_REQUIRED with WWW-Authenticate without a key', async () => {
    const res = await call(`${probe.url}/probe/protected`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="transcription-gateway"');
    expect(res.body).toEqual({ statusCode: 401, error: 'Unauthorized', code: 'API_KEY_REQUIRED', message: 'send an API key as Authorization: Bearer <key> or x-api-key' });
    expect((await call(`${probe.url}/probe/protected`, { headers: { Authorization: 'Basic dTpw' } })).status).toBe(401);
  });

  it('answers 403 API_KEY_INVALID for a wrong key, by either header', async () => {
    for (const init of [bearer(WRONG), xApiKey(WRONG), bearer(`${KEY_A}x`)]) {
      const res = await call(`${probe.url}/probe/protected`, init);
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ statusCode: 403, code: 'API_KEY_INVALID' });
      expect(res.headers.get('www-authenticate')).toBeNull();
    }
  });

  it('accepts every configured key as Bearer or X-API-Key, ASR_TOKEN included, and labels the request by a hash', async () => {
    for (const [key, init] of [
      [KEY_A, bearer(KEY_A)],
      [KEY_B, xApiKey(KEY_B)],
      [SEED_TOKEN, bearer(SEED_TOKEN)],
      [SEED_TOKEN, xApiKey(SEED_TOKEN)],
    ] as const) {
      const res = await call(`${probe.url}/probe/protected`, init);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ label: apiKeyLabel(key) });
    }
  });

  it('lets public routes through without a key', async () => {
    expect((await call(`${probe.url}/probe/health`)).status).toBe(200);
    expect((await call(`${probe.url}/probe/health`, bearer(WRONG))).status).toBe(200);
  });

  it('protects SSE: 401 JSON instead of a stream without a key, the stream with one', async () => {
    const denied = await fetch(`${probe.url}/probe/events`, { headers: { Accept: 'text/event-stream' } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('content-type')).toContain('application/json');
    expect(((await denied.json()) as { code: string }).code).toBe('API_KEY_REQUIRED');

    const stream = await fetch(`${probe.url}/probe/events`, { headers: { Accept: 'text/event-stream', 'X-API-Key': KEY_A } });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toContain('text/event-stream');
    expect(await readEvents(stream)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }]);
  });

  it('answers CORS preflights from CORS_ORIGIN without a key and exposes the rate-limit headers', async () => {
    const preflight = await fetch(`${probe.url}/probe/protected`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'authorization,x-api-key' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(preflight.headers.get('access-control-allow-headers')).toEqual(expect.stringContaining('X-API-Key'));
    expect(preflight.headers.get('access-control-allow-headers')).toEqual(expect.stringContaining('Authorization'));

    const res = await fetch(`${probe.url}/probe/protected`, { headers: { Origin: 'https://app.example', ...bearer(KEY_A).headers } });
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(res.headers.get('access-control-expose-headers')).toEqual(expect.stringContaining('Retry-After'));

    const other = await fetch(`${probe.url}/probe/protected`, { headers: { Origin: 'https://evil.example', ...bearer(KEY_A).headers } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('never writes a key to the logs', async () => {
    await call(`${probe.url}/probe/protected`, bearer(WRONG));
    const text = probe.logs.lines.join('\n');
    // The boot line names the keys by label only; it is there, so the capture works.
    expect(probe.logs.lines.filter((l) => l.includes('API key authentication on'))).toEqual([
      expect.stringContaining([KEY_A, KEY_B, SEED_TOKEN].map(apiKeyLabel).join(', ')),
    ]);
    for (const secret of [KEY_A, KEY_B, SEED_TOKEN, WRONG]) expect({ secret, logged: text.includes(secret) }).toEqual({ secret, logged: false });
  });
});

describe('rate limits (per key, counted in Redis)', () => {
  let probe: ProbeApp;
  beforeAll(async () => {
    probe = await startProbe({ API_KEYS: `${KEY_A},${KEY_B},${KEY_C}`, RATE_LIMIT_PER_MINUTE: '3', RATE_LIMIT_SUBMIT_PER_MINUTE: '1' });
  });
  afterAll(() => probe.app.close());

  it('answers 429 RATE_LIMITED with Retry-After once a key used its requests for the minute', async () => {
    const remaining: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call(`${probe.url}/probe/protected`, bearer(KEY_A));
      expect(res.status).toBe(200);
      remaining.push(res.headers.get('x-ratelimit-remaining'));
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const limited = await call(`${probe.url}/probe/protected`, bearer(KEY_A));
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect(limited.body).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      code: 'RATE_LIMITED',
      message: `rate limit of 3 requests per minute reached; retry after ${retryAfter} s`,
      limit: 3,
      retry_after: retryAfter,
    });
    expect(limited.headers.get('x-ratelimit-limit')).toBe('3');

    // Another key has its own budget; a missing or wrong key is still 401/403, never 429.
    expect((await call(`${probe.url}/probe/protected`, xApiKey(KEY_B))).status).toBe(200);
    expect((await call(`${probe.url}/probe/protected`)).status).toBe(401);
    expect((await call(`${probe.url}/probe/protected`, bearer(WRONG))).status).toBe(403);
    // Public routes are not limited.
    for (let i = 0; i < 5; i++) expect((await call(`${probe.url}/probe/health`, bearer(KEY_A))).status).toBe(200);
  });

  it('limits submissions more strictly, without using up the general budget on refused ones', async () => {
    expect((await call(`${probe.url}/probe/submit`, { method: 'POST', ...bearer(KEY_B) })).status).toBe(202);
    const refused = await call(`${probe.url}/probe/submit`, { method: 'POST', ...bearer(KEY_B) });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'RATE_LIMITED', limit: 1, message: expect.stringContaining('1 job submissions per minute') });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // KEY_B used 1 read (previous test) + 1 submission of its 3 requests: one more read fits.
    expect((await call(`${probe.url}/probe/protected`, bearer(KEY_B))).status).toBe(200);
    expect((await call(`${probe.url}/probe/protected`, bearer(KEY_B))).status).toBe(429);
  });

  it('counts an SSE stream once, when it is opened', async () => {
    const stream = await fetch(`${probe.url}/probe/events`, { headers: { Accept: 'text/event-stream', ...bearer(KEY_C).headers } });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('x-ratelimit-remaining')).toBe('2');
    expect(await readEvents(stream)).toHaveLength(5);
    expect((await call(`${probe.url}/probe/protected`, bearer(KEY_C))).headers.get('x-ratelimit-remaining')).toBe('1');
    expect((await call(`${probe.url}/probe/protected`, bearer(KEY_C))).status).toBe(200);
    expect((await call(`${probe.url}/probe/protected`, bearer(KEY_C))).status).toBe(429);
  });
});

describe('without configured keys (the embedded default)', () => {
  let probe: ProbeApp;
  beforeAll(async () => {
    probe = await startProbe({ RATE_LIMIT_PER_MINUTE: '2' });
  });
  afterAll(() => probe.app.close());

  it('warns once at boot that every endpoint is open', () => {
    expect(probe.logs.lines.filter((l) => l.startsWith('warn') && l.includes('no API keys configured'))).toHaveLength(1);
  });

  it('serves protected routes without a key, as anonymous, limited per client IP', async () => {
    const first = await call(`${probe.url}/probe/protected`);
    expect(first).toMatchObject({ status: 200, body: { label: 'anonymous' } });
    // A key, even an unknown one, changes nothing: the limit is the client address's.
    expect((await call(`${probe.url}/probe/protected`, bearer(WRONG))).status).toBe(200);
    const limited = await call(`${probe.url}/probe/protected`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});

describe('with rate limits off (0)', () => {
  let probe: ProbeApp;
  beforeAll(async () => {
    probe = await startProbe({ API_KEYS: KEY_A, RATE_LIMIT_PER_MINUTE: '0', RATE_LIMIT_SUBMIT_PER_MINUTE: '0' });
  });
  afterAll(() => probe.app.close());

  it('never answers 429 and sends no rate-limit headers', async () => {
    for (let i = 0; i < 10; i++) {
      const res = await call(`${probe.url}/probe/submit`, { method: 'POST', ...bearer(KEY_A) });
      expect(res.status).toBe(202);
      expect(res.headers.get('x-ratelimit-limit')).toBeNull();
    }
  });
});
