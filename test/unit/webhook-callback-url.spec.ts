import { GatewayError } from '../../src/common/gateway-error.js';
import { validateCallbackUrl, type HostResolver } from '../../src/webhooks/callback-url.js';
import { WEBHOOK_ERROR_STATUS, WebhookError } from '../../src/webhooks/webhook.errors.js';

const resolver = (table: Record<string, string[]>): HostResolver => async (host) => {
  const found = table[host];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};
const policy = { secretConfigured: true, allowPrivate: false, resolve: resolver({ 'hooks.example.com': ['93.184.215.14'], 'rebind.example.com': ['93.184.215.14', '10.0.0.7'], 'v6.example.com': ['2606:2800:21f:cb07:6820:80da:af6b:8b2c'] }) };

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    if (err instanceof WebhookError) return err.code;
    throw err;
  }
}

describe('validateCallbackUrl', () => {
  it('accepts public http(s) URLs and returns them normalized', async () => {
    await expect(validateCallbackUrl('https://hooks.example.com/transcripts?x=1', policy)).resolves.toBe('https://hooks.example.com/transcripts?x=1');
    await expect(validateCallbackUrl('HTTP://HOOKS.example.com:8080', policy)).resolves.toBe('http://hooks.example.com:8080/');
    await expect(validateCallbackUrl('https://v6.example.com/h', policy)).resolves.toBe('https://v6.example.com/h');
    await expect(validateCallbackUrl('https://93.184.215.14/h', policy)).resolves.toBe('https://93.184.215.14/h');
  });

  it('refuses every URL when no WEBHOOK_SECRET is configured', async () => {
    expect(await codeOf(validateCallbackUrl('https://hooks.example.com/', { ...policy, secretConfigured: false }))).toBe('WEBHOOKS_NOT_CONFIGURED');
  });

  it.each([
    ['', 'CALLBACK_URL_INVALID'],
    ['hooks.example.com/x', 'CALLBACK_URL_INVALID'],
    ['ftp://hooks.example.com/x', 'CALLBACK_URL_INVALID'],
    ['file:///etc/passwd', 'CALLBACK_URL_INVALID'],
    ['https://user:pw@hooks.example.com/', 'CALLBACK_URL_INVALID'],
    [`https://hooks.example.com/${'a'.repeat(2048)}`, 'CALLBACK_URL_INVALID'],
    ['https://nowhere.example.com/', 'CALLBACK_URL_INVALID'],
    ['http://127.0.0.1:9000/hook', 'CALLBACK_URL_FORBIDDEN'],
    ['http://2130706433/hook', 'CALLBACK_URL_FORBIDDEN'],
    ['http://0x7f.1/hook', 'CALLBACK_URL_FORBIDDEN'],
    ['http://[::1]/hook', 'CALLBACK_URL_FORBIDDEN'],
    ['http://[::ffff:169.254.169.254]/latest/meta-data', 'CALLBACK_URL_FORBIDDEN'],
    ['http://[64:ff9b::7f00:1]/hook', 'CALLBACK_URL_FORBIDDEN'],
    ['http://10.0.0.8/hook', 'CALLBACK_URL_FORBIDDEN'],
    ['http://192.168.1.20/hook', 'CALLBACK_URL_FORBIDDEN'],
    ['https://rebind.example.com/', 'CALLBACK_URL_FORBIDDEN'],
  ])('refuses %s with %s', async (url, code) => {
    expect(await codeOf(validateCallbackUrl(url, policy))).toBe(code);
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['169.254.169.254', 'link-local'],
  ])('refuses a host name that resolves to %s', async (address, kind) => {
    const named = { ...policy, resolve: resolver({ 'meta.example.com': [address] }) };
    await expect(validateCallbackUrl('https://meta.example.com/hook', named)).rejects.toMatchObject({ code: 'CALLBACK_URL_FORBIDDEN', publicFields: { address_kind: kind } });
  });

  it('allows private hosts with ALLOW_PRIVATE_URLS=true, without resolving them', async () => {
    const open = { secretConfigured: true, allowPrivate: true, resolve: resolver({}) };
    await expect(validateCallbackUrl('http://127.0.0.1:9000/hook', open)).resolves.toBe('http://127.0.0.1:9000/hook');
    await expect(validateCallbackUrl('http://receiver.internal/hook', open)).resolves.toBe('http://receiver.internal/hook');
    expect(await codeOf(validateCallbackUrl('ftp://127.0.0.1/', open))).toBe('CALLBACK_URL_INVALID');
  });

  it('refuses addresses no receiver can listen on even with ALLOW_PRIVATE_URLS=true', async () => {
    const open = { secretConfigured: true, allowPrivate: true, resolve: resolver({}) };
    for (const url of ['http://0.0.0.0:9000/', 'http://224.0.0.1/', 'http://255.255.255.255/', 'http://[::]/']) {
      expect(await codeOf(validateCallbackUrl(url, open))).toBe('CALLBACK_URL_FORBIDDEN');
    }
  });

  it('names the kind of address publicly, and what a name resolved to only in the private details', async () => {
    const named = (await validateCallbackUrl('https://rebind.example.com/', policy).catch((e: unknown) => e)) as WebhookError;
    expect(named.message).toBe('callback_url host rebind.example.com resolves to a private address; private, loopback and link-local hosts are allowed only with ALLOW_PRIVATE_URLS=true');
    expect(named.toPublic()).toEqual({ code: 'CALLBACK_URL_FORBIDDEN', message: named.message, callback_url: 'https://rebind.example.com/', address_kind: 'private' });
    expect(JSON.stringify(named.toPublic())).not.toContain('10.0.0.7');
    expect(named.details).toEqual({ address: '10.0.0.7', range: 'private' });
    await expect(validateCallbackUrl('http://127.0.0.1/', policy)).rejects.toThrow('callback_url host 127.0.0.1 is a loopback address; private, loopback and link-local hosts are allowed only with ALLOW_PRIVATE_URLS=true');
  });

  it('is a GatewayError answered 400 for every code', async () => {
    const err = (await validateCallbackUrl('ftp://x/', policy).catch((e: unknown) => e)) as WebhookError;
    expect(err).toBeInstanceOf(GatewayError);
    expect([err.status, err.retryable]).toEqual([400, false]);
    expect(WEBHOOK_ERROR_STATUS).toEqual({ CALLBACK_URL_INVALID: 400, CALLBACK_URL_FORBIDDEN: 400, WEBHOOKS_NOT_CONFIGURED: 400 });
  });
});
