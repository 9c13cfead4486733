import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ACCESS_ERROR_STATUS, AccessError } from '../../src/auth/access.errors.js';
import { ApiKeyGuard, isPublicRoute, Public, WWW_AUTHENTICATE, type KeyedRequest } from '../../src/auth/api-key.guard.js';
import { ApiKeys, configuredApiKeys, extractApiKey, keyMatches } from '../../src/auth/api-keys.js';
import { GatewayError } from '../../src/common/gateway-error.js';
import { AppConfig, parseEnv } from '../../src/config/app-config.js';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-fedcba9876543210';
const sha = (s: string) => createHash('sha256').update(s).digest();
const label = (s: string) => sha(s).toString('hex').slice(0, 8);

function config(env: Record<string, string>): AppConfig {
  const { value, problems } = parseEnv(AppConfig, env);
  expect(problems).toEqual([]);
  return value;
}

describe('configuredApiKeys', () => {
  it('merges API_KEYS (commas, whitespace) with ASR_TOKEN, drops empties and duplicates', () => {
    expect(configuredApiKeys({ API_KEYS: ` ${KEY_A} ,, ${KEY_B},`, ASR_TOKEN: KEY_A })).toEqual([KEY_A, KEY_B]);
    expect(configuredApiKeys({ API_KEYS: '', ASR_TOKEN: 'seed-token' })).toEqual(['seed-token']);
    expect(configuredApiKeys({ API_KEYS: ' , ', ASR_TOKEN: '' })).toEqual([]);
  });

  it('is validated with the rest of the environment', () => {
    expect(config({}).API_KEYS).toBe('');
    expect(config({ API_KEYS: `${KEY_A}, ${KEY_B}`, ASR_TOKEN: 'tok' }).ASR_TOKEN).toBe('tok');
    const bad = parseEnv(AppConfig, { API_KEYS: 'clé', ASR_TOKEN: 'two words', RATE_LIMIT_PER_MINUTE: '-1', ALLOW_PRIVATE_URLS: 'maybe', URL_MAX_REDIRECTS: '50' });
    expect(bad.problems.join('\n')).toEqual(expect.stringContaining('API_KEYS'));
    for (const name of ['ASR_TOKEN', 'RATE_LIMIT_PER_MINUTE', 'ALLOW_PRIVATE_URLS', 'URL_MAX_REDIRECTS']) {
      expect(bad.problems.some((p) => p.includes(name))).toBe(true);
    }
  });

  it('has the documented defaults', () => {
    const c = config({});
    expect([c.RATE_LIMIT_PER_MINUTE, c.RATE_LIMIT_SUBMIT_PER_MINUTE, c.ALLOW_PRIVATE_URLS, c.URL_FETCH_TIMEOUT_MS, c.URL_MAX_REDIRECTS]).toEqual([120, 30, false, 60000, 3]);
  });
});

describe('extractApiKey', () => {
  it.each<[string, IncomingHttpHeaders, string | null]>([
    ['Bearer', { authorization: `Bearer ${KEY_A}` }, KEY_A],
    ['bearer in any case, extra spaces', { authorization: `  bEaReR   ${KEY_A}  ` }, KEY_A],
    ['x-api-key', { 'x-api-key': KEY_B }, KEY_B],
    ['x-api-key trimmed', { 'x-api-key': `  ${KEY_B} ` }, KEY_B],
    ['x-api-key wins over Authorization', { 'x-api-key': KEY_B, authorization: `Bearer ${KEY_A}` }, KEY_B],
    ['Authorization when x-api-key is empty', { 'x-api-key': '  ', authorization: `Bearer ${KEY_A}` }, KEY_A],
    ['another scheme', { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` }, null],
    ['Bearer without a token', { authorization: 'Bearer ' }, null],
    ['a token with a space in it', { authorization: 'Bearer a b' }, null],
    ['nothing', {}, null],
  ])('%s', (_name, headers, expected) => {
    expect(extractApiKey(headers)).toBe(expected);
  });
});

describe('keyMatches (constant-time comparison of SHA-256 digests)', () => {
  it('matches only the same key, whatever the lengths', () => {
    expect(keyMatches(KEY_A, sha(KEY_A))).toBe(true);
    expect(keyMatches(KEY_B, sha(KEY_A))).toBe(false);
    // Different lengths neither throw (as timingSafeEqual on raw buffers would) nor match.
    expect(keyMatches('x', sha(KEY_A))).toBe(false);
    expect(keyMatches(`${KEY_A}${KEY_A}`, sha(KEY_A))).toBe(false);
    expect(keyMatches(KEY_A.slice(0, -1), sha(KEY_A))).toBe(false);
  });
});

describe('ApiKeys.check', () => {
  const keys = new ApiKeys(config({ API_KEYS: KEY_A, ASR_TOKEN: KEY_B }));

  it('identifies each configured key by its label, never the key', () => {
    expect(keys.check({ authorization: `Bearer ${KEY_A}` })).toEqual({ status: 'valid', label: label(KEY_A) });
    expect(keys.check({ 'x-api-key': KEY_B })).toEqual({ status: 'valid', label: label(KEY_B) });
    expect(keys.labels).toEqual([label(KEY_A), label(KEY_B)]);
    expect(JSON.stringify(keys)).not.toContain(KEY_A);
  });

  it('tells a missing key from a wrong one', () => {
    expect(keys.check({})).toEqual({ status: 'missing' });
    expect(keys.check({ authorization: 'Basic abc' })).toEqual({ status: 'missing' });
    expect(keys.check({ 'x-api-key': `${KEY_A}x` })).toEqual({ status: 'invalid' });
  });

  it('is open, as anonymous, with no key configured', () => {
    const open = new ApiKeys(config({}));
    expect(open.enabled).toBe(false);
    expect(open.check({ 'x-api-key': 'whatever' })).toEqual({ status: 'open', label: 'anonymous' });
  });

  it('reports keys shorter than 16 characters by label', () => {
    expect(new ApiKeys(config({ API_KEYS: `short,${KEY_A}` })).weakLabels).toEqual([label('short')]);
  });
});

describe('ApiKeyGuard', () => {
  class Probe {
    open(): void {}
    @Public()
    health(): void {}
    closed(): void {}
  }
  @Public()
  class PublicController {
    page(): void {}
  }

  const reflector = new Reflector();
  const guard = new ApiKeyGuard(new ApiKeys(config({ API_KEYS: KEY_A })), reflector);

  function call(cls: new () => object, handler: () => void, headers: IncomingHttpHeaders) {
    const req = { headers } as KeyedRequest;
    const sent: Record<string, string> = {};
    const res = { setHeader: (name: string, value: string) => (sent[name.toLowerCase()] = value) };
    const context = new ExecutionContextHost([req, res, () => undefined], cls as never, handler);
    try {
      return { allowed: guard.canActivate(context), req, sent, error: undefined };
    } catch (error) {
      return { allowed: false, req, sent, error: error as AccessError };
    }
  }

  it('lets public routes (handler or controller) through without a key, and ignores keys sent to them', () => {
    expect(call(Probe, Probe.prototype.health, {}).allowed).toBe(true);
    expect(call(PublicController, PublicController.prototype.page, { 'x-api-key': 'wrong' }).allowed).toBe(true);
    const context = new ExecutionContextHost([], Probe, Probe.prototype.closed);
    expect(isPublicRoute(reflector, context)).toBe(false);
  });

  it('answers 401 API_KEY_REQUIRED with WWW-Authenticate when no key is sent', () => {
    const { allowed, error, sent } = call(Probe, Probe.prototype.closed, {});
    expect(allowed).toBe(false);
    expect(error).toBeInstanceOf(AccessError);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ status: 401, code: 'API_KEY_REQUIRED', retryable: false });
    expect(error!.body()).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      code: 'API_KEY_REQUIRED',
      message: 'send an API key as Authorization: Bearer <key> or x-api-key',
    });
    expect(sent['www-authenticate']).toBe(WWW_AUTHENTICATE);
  });

  it('answers 403 API_KEY_INVALID for a wrong key, without echoing it', () => {
    const { error, sent } = call(Probe, Probe.prototype.open, { authorization: 'Bearer not-the-key' });
    expect(error!.status).toBe(403);
    expect(error!.body().code).toBe('API_KEY_INVALID');
    expect(JSON.stringify(error!.body())).not.toContain('not-the-key');
    expect(sent['www-authenticate']).toBeUndefined();
  });

  it('stores the key label on the request', () => {
    const { allowed, req } = call(Probe, Probe.prototype.open, { 'x-api-key': KEY_A });
    expect(allowed).toBe(true);
    expect(req.apiKeyLabel).toBe(label(KEY_A));
  });
});

describe('AccessError', () => {
  it('is a coded GatewayError with a status for every code, and only a rate limit is retryable', () => {
    expect(ACCESS_ERROR_STATUS).toEqual({ API_KEY_REQUIRED: 401, API_KEY_INVALID: 403, RATE_LIMITED: 429 });
    const limited = new AccessError('RATE_LIMITED', 'rate limit of 3 requests per minute reached; retry after 7 s', { limit: 3, retry_after: 7 });
    expect(limited).toMatchObject({ name: 'AccessError', status: 429, retryable: true });
    expect(limited.toPublic()).toEqual({ code: 'RATE_LIMITED', message: 'rate limit of 3 requests per minute reached; retry after 7 s', limit: 3, retry_after: 7 });
    // body() is what the gateway's error filter sends for it.
    expect(limited.body()).toEqual({ statusCode: 429, error: 'Too Many Requests', ...limited.toPublic() });
    expect(new AccessError('API_KEY_INVALID', 'the API key is not valid').retryable).toBe(false);
  });
});
