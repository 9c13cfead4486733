/**
 * Rate limits across API replicas: two real API processes (`node dist/src/main.js`,
 * APP_ROLE=api) against one private Redis, RATE_LIMIT_PER_MINUTE=10. Requests alternate between
 * the processes; together they must let exactly 10 through (not 10 each) and answer the rest 429
 * with Retry-After, in the gateway's and in OpenAI's error shape.
 *
 * Then Redis is frozen (SIGSTOP: connections stay open, nothing answers): requests must still be
 * answered promptly, decided by each process's own counts, with a warning in the log; once Redis
 * runs again the shared counts apply again.
 */
import { apiKeyLabel } from '../../src/metrics/metrics.service.js';
import { FaultHarness, waitFor, type GatewayProcess } from '../support/processes.js';

const KEY = 'rl-replicas-key-0123456789abcdef';
const OTHER = 'rl-replicas-other-fedcba9876543210';
const LIMIT = 10;

interface Answer {
  status: number;
  retryAfter: string | null;
  remaining: string | null;
  body: Record<string, unknown>;
  ms: number;
}

async function get(api: GatewayProcess, path: string, key?: string): Promise<Answer> {
  const started = Date.now();
  const res = await fetch(`${api.url}${path}`, { headers: key ? { Authorization: `Bearer ${key}` } : {}, signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, retryAfter: res.headers.get('retry-after'), remaining: res.headers.get('x-ratelimit-remaining'), body, ms: Date.now() - started };
}

const ENGINES = '/api/transcribe/jobs/engines';

describe('faults: rate limits shared by two API processes (real processes, one Redis)', () => {
  let h: FaultHarness;
  const apis: GatewayProcess[] = [];

  beforeAll(async () => {
    h = await FaultHarness.create('ratelimit');
    for (const name of ['api-1', 'api-2']) {
      apis.push(await h.startGateway({ role: 'api', name, env: { API_KEYS: `${KEY},${OTHER}`, RATE_LIMIT_PER_MINUTE: String(LIMIT), RATE_LIMIT_SUBMIT_PER_MINUTE: '5' } }));
    }
  }, 240_000);

  afterAll(async () => {
    await h?.cleanup();
  });

  it(`lets exactly ${LIMIT} requests of a key through in total, alternating between the processes, and answers the rest 429 with Retry-After`, async () => {
    const answers: Answer[] = [];
    for (let i = 0; i < 3 * LIMIT; i++) answers.push(await get(apis[i % 2], ENGINES, KEY));

    expect(answers.filter((a) => a.status === 200)).toHaveLength(LIMIT);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(2 * LIMIT);
    // The first LIMIT, five on each process, counted down one shared budget.
    expect(answers.slice(0, LIMIT).map((a) => [a.status, a.remaining])).toEqual(Array.from({ length: LIMIT }, (_, i) => [200, String(LIMIT - 1 - i)]));
    for (const refused of answers.slice(LIMIT)) {
      expect(refused.status).toBe(429);
      const retryAfter = Number(refused.retryAfter);
      expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
      expect(refused.body).toEqual({
        statusCode: 429,
        error: 'Too Many Requests',
        code: 'RATE_LIMITED',
        message: `rate limit of ${LIMIT} requests per minute reached; retry after ${retryAfter} s`,
        limit: LIMIT,
        retry_after: retryAfter,
      });
    }

    // One counter in Redis, under the deployment's QUEUE_PREFIX, named by the key's label (never the key).
    const counter = `${h.shared.QUEUE_PREFIX}:ratelimit:all:key:${apiKeyLabel(KEY)}`;
    expect(Number(await h.redis.command('GET', counter))).toBeGreaterThanOrEqual(LIMIT);
    const keys = (await h.redis.command('KEYS', `${h.shared.QUEUE_PREFIX}:ratelimit:*`)) as string[];
    expect(keys.some((k) => k.includes(KEY))).toBe(false);

    // The OpenAI-compatible routes share the budget and answer in OpenAI's shape, Retry-After included.
    const openai = await get(apis[1], '/v1/models', KEY);
    expect(openai.status).toBe(429);
    expect(Number(openai.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(openai.body).toMatchObject({ error: { type: 'requests', code: 'rate_limit_exceeded' } });

    // Another key has its own budget; no key is 401 (with WWW-Authenticate), never 429; probes are not limited.
    expect((await get(apis[0], ENGINES, OTHER)).status).toBe(200);
    const anonymous = await fetch(`${apis[0].url}${ENGINES}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="transcription-gateway"');
    for (const api of apis) expect((await fetch(`${api.url}/health`)).status).toBe(200);
  });

  it('keeps answering promptly on per-process counts while Redis is frozen, and shares the counts again once it runs', async () => {
    // Use up OTHER's shared budget (one request of it was made above).
    for (let i = 1; i < LIMIT; i++) expect((await get(apis[i % 2], ENGINES, OTHER)).status).toBe(200);
    expect((await get(apis[0], ENGINES, OTHER)).status).toBe(429);

    const pid = h.redis.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      // Redis does not answer: each process counts on its own, so OTHER gets in again, and no
      // request waits much longer than the limiter's Redis timeout (500 ms).
      const frozen: Answer[] = [];
      for (let i = 0; i < 6; i++) frozen.push(await get(apis[i % 2], ENGINES, OTHER));
      expect(frozen.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(Math.max(...frozen.map((a) => a.ms))).toBeLessThan(2_000);
      for (const api of apis) {
        await waitFor(`${api.name} to log the Redis outage`, () => api.log().includes('Redis unreachable for rate limits'), 5_000, 100);
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    // After the retry interval (5 s) api-1 asks Redis again. KEY's requests only drive it there:
    // OTHER's own count on api-1 stayed at 3, so a 429 for OTHER now comes from the shared count.
    await waitFor('api-1 to log that Redis answers again', async () => {
      await get(apis[0], ENGINES, KEY);
      return apis[0].log().includes('Redis answers again');
    }, 15_000, 500);
    const back = await get(apis[0], ENGINES, OTHER);
    expect(back.status).toBe(429);
    expect(back.body).toMatchObject({ code: 'RATE_LIMITED', limit: LIMIT });
    expect(apis.map((a) => a.exit)).toEqual([undefined, undefined]);
  });
});
