import { existsSync, readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { URL_FETCH_ERROR_STATUS, UrlFetchError, type UrlFetchErrorCode } from '../../src/audio/url-fetch.errors.js';
import { downloadFilename, parseAudioUrl, UrlFetcher, type UrlFetcherOptions } from '../../src/audio/url-fetcher.js';
import { GatewayError } from '../../src/common/gateway-error.js';
import { addressAllowed, classifyAddress, type AddressKind } from '../../src/common/outbound/ip-ranges.js';
import { scratchDir } from '../support/env.js';

describe('classifyAddress', () => {
  it.each<[string, AddressKind]>([
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['100.128.0.1', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['2606:4700:4700::1111', 'public'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::', 'unspecified'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fec0::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['::7f00:2', 'reserved'],
    ['2001::1', 'reserved'],
    // IPv4 inside IPv6: the kind of the IPv4 address, where the connection ends up.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0000:0000:0000:0000:0000:ffff:0a00:0001', 'private'],
    ['[::ffff:192.168.0.1]', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b::808:808', 'public'],
    ['64:ff9b:1::1', 'private'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:808:808::1', 'public'],
  ])('%s is %s', (address, kind) => {
    expect(classifyAddress(address).kind).toBe(kind);
  });

  it("names ipaddr.js's range that decided, through IPv6 wrappers", () => {
    expect(classifyAddress('::ffff:10.0.0.1')).toEqual({ kind: 'private', range: 'ipv4Mapped > private' });
    expect(classifyAddress('172.20.1.1')).toEqual({ kind: 'private', range: 'private' });
    expect(classifyAddress('100.64.0.1')).toEqual({ kind: 'private', range: 'carrierGradeNat' });
    expect(classifyAddress('64:ff9b::a9fe:a9fe')).toEqual({ kind: 'link-local', range: 'rfc6052 > linkLocal' });
    expect(classifyAddress('8.8.8.8')).toEqual({ kind: 'public', range: 'unicast' });
  });

  it('rejects what is not an address, including the short and hex IPv4 forms URL parsing already normalizes', () => {
    for (const text of ['localhost', '1.2.3', '0x7f.1', '127.1', '010.0.0.1', '1.2.3.4.5']) expect(() => classifyAddress(text)).toThrow(TypeError);
  });

  it('allows public addresses always, private ones only when asked, never unspecified/multicast/broadcast', () => {
    const allowed = (a: string, allowPrivate: boolean) => addressAllowed(classifyAddress(a), allowPrivate);
    expect([allowed('8.8.8.8', false), allowed('8.8.8.8', true)]).toEqual([true, true]);
    for (const a of ['127.0.0.1', '10.0.0.1', '169.254.169.254', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '192.0.2.1']) {
      expect({ a, off: allowed(a, false), on: allowed(a, true) }).toEqual({ a, off: false, on: true });
    }
    for (const a of ['0.0.0.0', '::', '224.0.0.1', 'ff02::1', '255.255.255.255']) {
      expect({ a, on: allowed(a, true) }).toEqual({ a, on: false });
    }
  });
});

describe('parseAudioUrl and file names', () => {
  it.each([
    ['not a url', 'not a valid absolute URL'],
    ['/relative/path.wav', 'not a valid absolute URL'],
    ['ftp://example.com/a.wav', 'a ftp URL'],
    ['file:///etc/passwd', 'a file URL'],
    ['https://user:secret@example.com/a.wav', 'credentials'],
  ])('refuses %s', (url, message) => {
    expect(() => parseAudioUrl(url)).toThrow(expect.objectContaining({ code: 'URL_INVALID', message: expect.stringContaining(message) }));
  });

  it('accepts http and https, dropping the fragment, and resolves redirects against the previous URL', () => {
    expect(parseAudioUrl('HTTPS://Example.COM/a.wav#t=3').href).toBe('https://example.com/a.wav');
    expect(parseAudioUrl('../b.wav?x=1', new URL('http://h:81/dir/sub/a.wav')).href).toBe('http://h:81/dir/b.wav?x=1');
    expect(() => parseAudioUrl('gopher://h/', new URL('http://h/'))).toThrow('h redirected to a gopher URL');
  });

  it('takes the file name from Content-Disposition, else the URL path, keeping only a harmless last segment', () => {
    const url = new URL('https://h/a/b/rec%20%C3%A9t%C3%A9.flac?sig=1');
    expect(downloadFilename({}, url)).toBe('rec été.flac');
    expect(downloadFilename({ 'content-disposition': 'attachment; filename="../../etc/passwd"' }, url)).toBe('passwd');
    expect(downloadFilename({ 'content-disposition': 'attachment; filename="..\\..\\x.wav"' }, url)).toBe('x.wav');
    expect(downloadFilename({}, new URL('https://h/'))).toBe('audio');
    expect(downloadFilename({}, new URL('https://h/.hidden'))).toBe('hidden');
  });

  it('is a GatewayError whose status comes from the table, retryable only where a later try may pass', () => {
    const http503 = new UrlFetchError('URL_HTTP_ERROR', 'h answered HTTP 503', { publicFields: { upstream_status: 503 } });
    const http404 = new UrlFetchError('URL_HTTP_ERROR', 'h answered HTTP 404', { publicFields: { upstream_status: 404 } });
    expect(http503).toBeInstanceOf(GatewayError);
    expect([http503.status, http503.retryable, http404.retryable]).toEqual([422, true, false]);
    expect(new UrlFetchError('URL_TIMEOUT', 'slow').retryable).toBe(true);
    expect(new UrlFetchError('URL_FORBIDDEN_ADDRESS', 'no').retryable).toBe(false);
    expect(http503.toPublic()).toEqual({ code: 'URL_HTTP_ERROR', message: 'h answered HTTP 503', upstream_status: 503 });
  });

  it('maps every code to a 4xx', () => {
    expect(URL_FETCH_ERROR_STATUS).toEqual({
      URL_INVALID: 400,
      URL_FORBIDDEN_ADDRESS: 400,
      URL_TOO_LARGE: 413,
      URL_TIMEOUT: 422,
      URL_HTTP_ERROR: 422,
      URL_TOO_MANY_REDIRECTS: 422,
      URL_FETCH_FAILED: 422,
    });
  });
});

/** What the test server saw of one request. */
interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  acceptEncoding: string | undefined;
  /** Whether the server finished writing its response before the connection closed. */
  finished?: boolean;
}

/** A real HTTP server on 127.0.0.1 with one handler per path. */
async function audioServer(routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void>) {
  const seen: Seen[] = [];
  const closed: Promise<void>[] = [];
  const server = http.createServer((req, res) => {
    const entry: Seen = { method: req.method!, url: req.url!, host: req.headers.host, acceptEncoding: req.headers['accept-encoding'] };
    seen.push(entry);
    closed.push(new Promise((resolve) => res.on('close', () => resolve(void (entry.finished = res.writableFinished)))));
    const route = routes[new URL(req.url!, 'http://x').pathname];
    if (route) route(req, res);
    else res.writeHead(404, 'Not Found').end('no such file');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (p: string) => `http://127.0.0.1:${port}${p}`,
    seen,
    /** Resolves once every response so far has closed. */
    settled: () => Promise.all(closed),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const WAV = Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4000, 7)]);

/** Streams `total` bytes in 16 KiB chunks without Content-Length (chunked), honouring backpressure. */
function chunked(total: number) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'Content-Type': 'audio/wav' });
    let sent = 0;
    const pump = () => {
      while (sent < total && !res.destroyed) {
        sent += 16384;
        if (!res.write(Buffer.alloc(16384, 1))) return void res.once('drain', pump);
      }
      if (!res.destroyed) res.end();
    };
    pump();
  };
}

async function failure(promise: Promise<unknown>): Promise<UrlFetchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UrlFetchError);
  return error as UrlFetchError;
}

describe('UrlFetcher against a real HTTP server', () => {
  const dir = scratchDir('url-fetch');
  let n = 0;
  const dest = () => path.join(dir, `download-${++n}.bin`);
  const fetcher = (options: Partial<UrlFetcherOptions> = {}) => new UrlFetcher({ allowPrivate: true, timeoutMs: 10_000, maxRedirects: 3, ...options });
  let server: Awaited<ReturnType<typeof audioServer>>;

  beforeAll(async () => {
    server = await audioServer({
      '/rec.wav': (_req, res) => res.writeHead(200, { 'Content-Type': 'audio/wav; charset=binary', 'Content-Length': WAV.length }).end(WAV),
      '/download': (_req, res) =>
        res.writeHead(200, { 'Content-Type': 'audio/mpeg', 'Content-Disposition': "attachment; filename*=UTF-8''r%C3%A9union.mp3" }).end(WAV),
      '/r1': (_req, res) => res.writeHead(302, { Location: '/rec.wav' }).end(),
      '/r2': (_req, res) => res.writeHead(301, { Location: `http://127.0.0.1:${server.port}/r1` }).end(),
      '/r3': (_req, res) => res.writeHead(307, { Location: 'r2' }).end(),
      '/r4': (_req, res) => res.writeHead(308, { Location: '/r3' }).end(),
      '/to-ftp': (_req, res) => res.writeHead(302, { Location: 'ftp://127.0.0.1/x.wav' }).end(),
      '/to-multicast': (_req, res) => res.writeHead(302, { Location: 'http://[ff02::1]/x.wav' }).end(),
      '/no-location': (_req, res) => res.writeHead(302).end(),
      '/private': (_req, res) => res.writeHead(403, 'Forbidden').end('denied'),
      '/big-declared': (_req, res) => res.writeHead(200, { 'Content-Length': 10_000_000 }).write(Buffer.alloc(1024)),
      '/big-chunked': chunked(64 * 1024 * 1024),
      '/exactly-4004': (_req, res) => res.writeHead(200).end(WAV),
      '/silent': () => undefined,
      '/trickle': (_req, res) => {
        res.writeHead(200, { 'Content-Length': 1_000_000 });
        res.write(Buffer.alloc(1000));
      },
      '/cut': (_req, res) => {
        res.writeHead(200, { 'Content-Length': 100_000 });
        res.write(Buffer.alloc(1000), () => res.destroy());
      },
    });
  });
  afterAll(() => server.close());

  it('downloads a file, taking the name from the URL path and the media type without parameters', async () => {
    const file = dest();
    const got = await fetcher().download(server.url('/rec.wav'), file, { maxBytes: 1_000_000 });
    expect(got).toEqual({ filename: 'rec.wav', contentType: 'audio/wav', sizeBytes: WAV.length });
    expect(readFileSync(file).equals(WAV)).toBe(true);
    const request = server.seen.at(-1)!;
    expect(request).toMatchObject({ method: 'GET', url: '/rec.wav', host: `127.0.0.1:${server.port}`, acceptEncoding: 'identity' });
  });

  it('takes the name from Content-Disposition when there is one', async () => {
    const got = await fetcher().download(server.url('/download?sig=abc'), dest(), { maxBytes: 1_000_000 });
    expect(got.filename).toBe('réunion.mp3');
    expect(got.contentType).toBe('audio/mpeg');
  });

  it('follows up to URL_MAX_REDIRECTS redirects (absolute and relative Location), and fails past them', async () => {
    const file = dest();
    const got = await fetcher({ maxRedirects: 3 }).download(server.url('/r3'), file, { maxBytes: 1_000_000 });
    expect(got).toMatchObject({ filename: 'rec.wav', sizeBytes: WAV.length });

    const before = server.seen.length;
    const error = await failure(fetcher({ maxRedirects: 3 }).download(server.url('/r4'), dest(), { maxBytes: 1_000_000 }));
    expect(error.code).toBe('URL_TOO_MANY_REDIRECTS');
    expect(error.publicFields).toEqual({ max_redirects: 3 });
    // r4 → r3 → r2 → r1 were requested; the fourth redirect (to rec.wav) was not followed.
    expect(server.seen.slice(before).map((s) => s.url)).toEqual(['/r4', '/r3', '/r2', '/r1']);

    expect((await failure(fetcher({ maxRedirects: 0 }).download(server.url('/r1'), dest(), { maxBytes: 1_000_000 }))).code).toBe('URL_TOO_MANY_REDIRECTS');
  });

  it('checks every redirect hop like the first URL', async () => {
    const ftp = await failure(fetcher().download(server.url('/to-ftp'), dest(), { maxBytes: 1_000_000 }));
    expect(ftp.code).toBe('URL_INVALID');
    expect(ftp.message).toContain(`127.0.0.1:${server.port} redirected to a ftp URL`);
    const multicast = await failure(fetcher().download(server.url('/to-multicast'), dest(), { maxBytes: 1_000_000 }));
    expect(multicast.code).toBe('URL_FORBIDDEN_ADDRESS');
    expect(multicast.publicFields).toEqual({ address_kind: 'multicast' });
  });

  it('refuses loopback and private hosts unless private addresses are allowed, before connecting', async () => {
    const before = server.seen.length;
    const strict = fetcher({ allowPrivate: false });
    const literal = await failure(strict.download(server.url('/rec.wav'), dest(), { maxBytes: 1_000_000 }));
    expect(literal.code).toBe('URL_FORBIDDEN_ADDRESS');
    expect(literal.message).toBe('the address 127.0.0.1 is a loopback address; the gateway fetches audio only from public addresses unless ALLOW_PRIVATE_URLS=true');
    // The name localhost (OS resolver), the decimal form of 127.0.0.1, and an IPv4-mapped IPv6 literal.
    for (const url of [`http://localhost:${server.port}/rec.wav`, `http://2130706433:${server.port}/rec.wav`, `http://[::ffff:127.0.0.1]:${server.port}/rec.wav`]) {
      expect({ url, code: (await failure(strict.download(url, dest(), { maxBytes: 1_000_000 }))).code }).toEqual({ url, code: 'URL_FORBIDDEN_ADDRESS' });
    }
    expect(server.seen.length).toBe(before);

    const got = await fetcher({ allowPrivate: true }).download(server.url('/rec.wav'), dest(), { maxBytes: 1_000_000 });
    expect(got.sizeBytes).toBe(WAV.length);
  });

  it('connects to the address it checked, not to a second resolution of the name', async () => {
    const asked: string[] = [];
    const pinned = fetcher({ allowPrivate: true, resolve: async (host) => (asked.push(host), [{ address: '127.0.0.1', family: 4 }]) });
    const got = await pinned.download(`http://audio.test:${server.port}/rec.wav`, dest(), { maxBytes: 1_000_000 });
    expect(got.filename).toBe('rec.wav');
    // audio.test exists only in this resolver; the request reached the test server under that name, and the name was resolved once.
    expect(server.seen.at(-1)!.host).toBe(`audio.test:${server.port}`);
    expect(asked).toEqual(['audio.test']);
  });

  it('refuses a name when any of its addresses is not public', async () => {
    const mixed = fetcher({ allowPrivate: false, resolve: async () => [{ address: '8.8.8.8', family: 4 }, { address: '10.0.0.7', family: 4 }] });
    const error = await failure(mixed.download('http://mixed.test/a.wav', dest(), { maxBytes: 1 }));
    expect(error.code).toBe('URL_FORBIDDEN_ADDRESS');
    expect(error.message).toBe('the host mixed.test resolves to a private address; the gateway fetches audio only from public addresses unless ALLOW_PRIVATE_URLS=true');
    // The resolved address is a private detail: the body a client gets does not contain it.
    expect(JSON.stringify(error.toPublic())).not.toContain('10.0.0.7');
    expect(error.details).toMatchObject({ address: '10.0.0.7' });

    const notFound = Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' });
    const missing = fetcher({ resolve: () => Promise.reject(notFound) });
    const unresolved = await failure(missing.download('http://nowhere.test/a.wav', dest(), { maxBytes: 1 }));
    expect([unresolved.code, unresolved.message]).toEqual(['URL_FETCH_FAILED', 'the host nowhere.test could not be resolved']);
  });

  it.each([
    ['127.0.0.1', 4, 'loopback'],
    ['::ffff:127.0.0.1', 6, 'loopback'],
    ['169.254.169.254', 4, 'link-local'],
  ])('refuses a host name that resolves to %s when it connects, sending nothing', async (address, family, kind) => {
    const before = server.seen.length;
    const asked: string[] = [];
    const strict = fetcher({ allowPrivate: false, resolve: async (host) => (asked.push(host), [{ address, family }]) });
    const error = await failure(strict.download(`http://rebound.test:${server.port}/rec.wav`, dest(), { maxBytes: 1_000_000 }));
    expect(error).toMatchObject({ code: 'URL_FORBIDDEN_ADDRESS', status: 400, publicFields: { address_kind: kind } });
    expect(error.message).toBe(`the host rebound.test resolves to a ${kind} address; the gateway fetches audio only from public addresses unless ALLOW_PRIVATE_URLS=true`);
    // One resolution, by the connection itself: no earlier answer that a later one could differ from.
    expect(asked).toEqual(['rebound.test']);
    expect(server.seen.length).toBe(before);
  });

  it('refuses a body over the limit by its Content-Length, without reading it', async () => {
    const file = dest();
    const error = await failure(fetcher().download(server.url('/big-declared'), file, { maxBytes: 1_000_000 }));
    expect(error.code).toBe('URL_TOO_LARGE');
    expect(error.message).toBe('the audio at audio_url is 10000000 bytes, more than the 1000000-byte limit (MAX_FILE_SIZE)');
    expect(error.publicFields).toEqual({ max_bytes: 1_000_000 });
    expect(existsSync(file)).toBe(false);
  });

  it('counts a chunked body while streaming, stops at the limit and removes the partial file', async () => {
    const file = dest();
    const error = await failure(fetcher().download(server.url('/big-chunked'), file, { maxBytes: 200_000 }));
    expect(error.code).toBe('URL_TOO_LARGE');
    expect(existsSync(file)).toBe(false);
    await server.settled();
    // The server was cut off long before its 64 MiB were sent.
    expect(server.seen.at(-1)!).toMatchObject({ url: '/big-chunked', finished: false });
  });

  it('accepts a body of exactly the limit', async () => {
    const got = await fetcher().download(server.url('/exactly-4004'), dest(), { maxBytes: WAV.length });
    expect(got.sizeBytes).toBe(WAV.length);
  });

  it('times out when the server never answers, or sends the body too slowly', async () => {
    const quick = fetcher({ timeoutMs: 300 });
    const silent = await failure(quick.download(server.url('/silent'), dest(), { maxBytes: 1_000_000 }));
    expect(silent.code).toBe('URL_TIMEOUT');
    expect(silent.publicFields).toEqual({ timeout_ms: 300 });
    const file = dest();
    const slow = await failure(quick.download(server.url('/trickle'), file, { maxBytes: 10_000_000 }));
    expect(slow.code).toBe('URL_TIMEOUT');
    expect(existsSync(file)).toBe(false);
  });

  it('reports HTTP errors with the upstream status, never the URL', async () => {
    const error = await failure(fetcher().download(server.url('/private?X-Amz-Signature=secret'), dest(), { maxBytes: 1_000_000 }));
    expect(error.code).toBe('URL_HTTP_ERROR');
    expect(error.message).toBe(`127.0.0.1:${server.port} answered HTTP 403 Forbidden`);
    expect(error.publicFields).toEqual({ upstream_status: 403 });
    expect((await failure(fetcher().download(server.url('/nothing-here'), dest(), { maxBytes: 1 }))).publicFields).toEqual({ upstream_status: 404 });
    expect((await failure(fetcher().download(server.url('/no-location'), dest(), { maxBytes: 1 }))).publicFields).toEqual({ upstream_status: 302 });
  });

  it('fails when the connection closes before the whole body arrived, removing the partial file', async () => {
    const file = dest();
    const error = await failure(fetcher().download(server.url('/cut'), file, { maxBytes: 1_000_000 }));
    expect(error.code).toBe<UrlFetchErrorCode>('URL_FETCH_FAILED');
    expect(existsSync(file)).toBe(false);
  });

  it('fails when nothing listens on the port', async () => {
    const idle = await audioServer({});
    const url = idle.url('/a.wav');
    await idle.close();
    const error = await failure(fetcher().download(url, dest(), { maxBytes: 1 }));
    expect(error.code).toBe('URL_FETCH_FAILED');
    expect(error.message).toBe(`${new URL(url).host} refused the connection`);
  });

  it("stops when the caller aborts, rejecting with the caller's reason", async () => {
    const controller = new AbortController();
    const file = dest();
    const download = fetcher().download(server.url('/trickle'), file, { maxBytes: 10_000_000, signal: controller.signal });
    const reason = new Error('client went away');
    setTimeout(() => controller.abort(reason), 100);
    await expect(download).rejects.toBe(reason);
    expect(existsSync(file)).toBe(false);
  });
});
