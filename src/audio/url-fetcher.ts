import type { Provider } from '@nestjs/common';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppConfig } from '../config/app-config.js';
import { addressAllowed, classifyAddress, NEVER_ALLOWED, type AddressKind } from './ip-ranges.js';
import { UrlFetchError } from './url-fetch.errors.js';

/** Resolves a host name to every address it has (the OS resolver by default: /etc/hosts, then DNS). */
export type HostResolver = (hostname: string) => Promise<LookupAddress[]>;

export interface UrlFetcherOptions {
  /** ALLOW_PRIVATE_URLS: also connect to private, loopback, link-local and reserved addresses. */
  allowPrivate: boolean;
  /** URL_FETCH_TIMEOUT_MS: milliseconds for the whole download (every redirect, headers, body). */
  timeoutMs: number;
  /** URL_MAX_REDIRECTS: redirects followed; one more fails with URL_TOO_MANY_REDIRECTS. */
  maxRedirects: number;
  /** Host name resolution; tests map names to their own server. Default: `dns.lookup(host, {all: true})`. */
  resolve?: HostResolver;
}

export interface DownloadOptions {
  /** Largest accepted body in bytes (MAX_FILE_SIZE); checked against Content-Length and while streaming. */
  maxBytes: number;
  /** Cancels the download (e.g. the client went away); the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What a download produced at `destPath`. */
export interface FetchedAudio {
  /**
   * From the last response's `Content-Disposition` (`filename*` per RFC 6266/8187, else `filename`),
   * else the last segment of the final URL's path (percent-decoded), else `audio`. Directory parts
   * and control characters removed.
   */
  filename: string;
  /** The response's media type without parameters (`audio/mpeg`), `application/octet-stream` when absent. */
  contentType: string;
  /** Bytes written to `destPath`. */
  sizeBytes: number;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'transcription-gateway (audio_url fetch)';

/** Error codes of sockets, DNS, TLS and the HTTP parser: the far side failed, not this process. */
const NETWORK_ERROR = /^(ENOTFOUND|EAI_|ENODATA|ECONN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EPIPE|EPROTO|ERR_STREAM_PREMATURE_CLOSE|HPE_|ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_INVALID_CHAR|ERR_HTTP_)/;

const ADDRESS_WORDS: Record<AddressKind, string> = {
  public: 'a public',
  private: 'a private',
  loopback: 'a loopback',
  'link-local': 'a link-local',
  reserved: 'a reserved (non-routable)',
  unspecified: 'an unspecified (0.0.0.0 or ::)',
  multicast: 'a multicast',
  broadcast: 'a broadcast',
};

/**
 * Parses an `audio_url` (or, with `base`, a redirect's Location against the URL that sent it).
 *
 * @throws UrlFetchError URL_INVALID: not an absolute URL, a scheme other than http/https, or
 *   credentials in the URL
 */
export function parseAudioUrl(raw: string, base?: URL): URL {
  const what = base ? `${base.host} redirected to` : 'audio_url is';
  let url: URL;
  try {
    url = base ? new URL(raw, base) : new URL(raw);
  } catch {
    throw new UrlFetchError('URL_INVALID', `${what} not a valid absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UrlFetchError('URL_INVALID', `${what} a ${url.protocol.replace(/:$/, '')} URL; only http and https URLs are fetched`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new UrlFetchError('URL_INVALID', `${what} a URL with credentials (user:password@host); they are not accepted`);
  }
  url.hash = '';
  return url;
}

/** Decodes RFC 8187 `charset'lang'pct-encoded` (UTF-8 or ISO-8859-1). */
function decodeExtValue(charset: string, encoded: string): string | null {
  try {
    if (/^utf-8$/i.test(charset)) return decodeURIComponent(encoded);
    // Each %XX is one ISO-8859-1 byte, whose code point is the byte value.
    if (/^iso-8859-1$/i.test(charset)) return encoded.replace(/%([0-9a-f]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  } catch {
    // A malformed escape: fall back to the plain filename parameter.
  }
  return null;
}

/** `filename*` (preferred) or `filename` of a Content-Disposition value (RFC 6266), or null. */
export function dispositionFilename(value: string | undefined): string | null {
  if (!value) return null;
  const ext = /(?:^|;)\s*filename\*\s*=\s*"?([^'";\s]*)'[^']*'([^;"\s]+)"?/i.exec(value);
  const decoded = ext ? decodeExtValue(ext[1]!, ext[2]!) : null;
  if (decoded) return decoded;
  const plain = /(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/i.exec(value);
  if (!plain) return null;
  return (plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2]!.trim()) || null;
}

/** Last path segment, no control characters, no leading dots, at most 200 characters; `audio` when nothing is left. */
function cleanFilename(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const cleaned = base.normalize('NFC').replace(/[\u0000-\u001f\u007f]/g, '').replace(/^\.+/, '').trim();
  return (cleaned || 'audio').slice(0, 200);
}

/** The file name of a download: Content-Disposition first, else the URL's last path segment. */
export function downloadFilename(headers: IncomingHttpHeaders, url: URL): string {
  const fromHeader = dispositionFilename(headers['content-disposition']);
  if (fromHeader) return cleanFilename(fromHeader);
  const last = url.pathname.split('/').filter((s) => s !== '').pop() ?? '';
  let decoded = last;
  try {
    decoded = decodeURIComponent(last);
  } catch {
    // Keep the raw segment when it is not valid percent-encoding.
  }
  return cleanFilename(decoded);
}

/** Resolves with `promise`, or rejects with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}

const systemResolver: HostResolver = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

/**
 * A `lookup` for http.request that answers with the one address already checked, so the socket
 * connects exactly there. Resolving again at connect time would let a host name switch to an
 * internal address between the check and the connection (DNS rebinding).
 */
function pinnedLookup(target: LookupAddress): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  };
}

/**
 * Downloads the audio of an `audio_url` submission to a local file — the one class that makes
 * outbound HTTP requests for intake. Rules:
 *
 * - http and https only, no credentials in the URL;
 * - the host's addresses are resolved first and every one must be public (unless
 *   `allowPrivate`, which still refuses unspecified, multicast and broadcast addresses); the
 *   socket then connects to the address that was checked, never to a fresh resolution;
 * - at most `maxRedirects` redirects (301, 302, 303, 307, 308), each one checked like the first URL;
 * - the body may not exceed `maxBytes`: refused at once by Content-Length, and counted while
 *   streaming (chunked responses), aborting at the first byte over;
 * - the whole download must finish within `timeoutMs`;
 * - on any failure the partial file at `destPath` is removed.
 *
 * Nothing is logged; error messages name the host, never the URL (presigned URLs carry
 * credentials in their query) or the addresses it resolved to.
 */
export class UrlFetcher {
  private readonly resolve: HostResolver;

  constructor(readonly options: UrlFetcherOptions) {
    this.resolve = options.resolve ?? systemResolver;
  }

  /** The fetcher configured by ALLOW_PRIVATE_URLS, URL_FETCH_TIMEOUT_MS and URL_MAX_REDIRECTS. */
  static fromConfig(config: AppConfig): UrlFetcher {
    return new UrlFetcher({ allowPrivate: config.ALLOW_PRIVATE_URLS, timeoutMs: config.URL_FETCH_TIMEOUT_MS, maxRedirects: config.URL_MAX_REDIRECTS });
  }

  /**
   * Fetches `rawUrl` into `destPath` (created or overwritten).
   *
   * @throws UrlFetchError URL_INVALID, URL_FORBIDDEN_ADDRESS, URL_TOO_LARGE, URL_TIMEOUT,
   *   URL_HTTP_ERROR (`upstream_status`), URL_TOO_MANY_REDIRECTS, URL_FETCH_FAILED
   * @throws the reason of `options.signal` when the caller aborts; a file-system error as it is
   */
  async download(rawUrl: string, destPath: string, options: DownloadOptions): Promise<FetchedAudio> {
    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
    let url = parseAudioUrl(rawUrl);
    try {
      for (let redirects = 0; ; redirects++) {
        const target = await this.checkedAddress(url, signal);
        const res = await this.request(url, target, signal);
        const status = res.statusCode ?? 0;
        if (REDIRECT_STATUSES.has(status) && res.headers.location) {
          res.destroy();
          if (redirects >= this.options.maxRedirects) {
            throw new UrlFetchError('URL_TOO_MANY_REDIRECTS', `audio_url was redirected more than ${this.options.maxRedirects} times (URL_MAX_REDIRECTS)`, {
              max_redirects: this.options.maxRedirects,
            });
          }
          url = parseAudioUrl(res.headers.location, url);
          continue;
        }
        if (status < 200 || status > 299) {
          res.destroy();
          throw new UrlFetchError('URL_HTTP_ERROR', `${url.host} answered HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`, { upstream_status: status });
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > options.maxBytes) {
          res.destroy();
          throw this.tooLarge(options.maxBytes, declared);
        }
        const sizeBytes = await this.save(res, destPath, options.maxBytes, signal);
        const contentType = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() || 'application/octet-stream';
        return { filename: downloadFilename(res.headers, url), contentType, sizeBytes };
      }
    } catch (err) {
      await rm(destPath, { force: true }).catch(() => undefined);
      throw this.translate(err, url, options.signal, deadline);
    }
  }

  /** Resolves the URL's host and returns the address to connect to, once every address passed the policy. */
  private async checkedAddress(url: URL, signal: AbortSignal): Promise<LookupAddress> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const family = isIP(host);
    const addresses = family !== 0 ? [{ address: host, family }] : await abortable(this.resolve(host), signal);
    if (addresses.length === 0) throw new UrlFetchError('URL_FETCH_FAILED', `the host ${host} has no address`);
    for (const { address } of addresses) {
      const cls = classifyAddress(address);
      if (addressAllowed(cls, this.options.allowPrivate)) continue;
      const subject = family !== 0 ? `the address ${host} is` : `the host ${host} resolves to`;
      const hint = NEVER_ALLOWED.has(cls.kind)
        ? 'no server can be fetched from there'
        : 'the gateway fetches audio only from public addresses unless ALLOW_PRIVATE_URLS=true';
      throw new UrlFetchError('URL_FORBIDDEN_ADDRESS', `${subject} ${ADDRESS_WORDS[cls.kind]} address; ${hint}`, { address_kind: cls.kind });
    }
    return addresses[0]!;
  }

  /** One GET on a fresh connection (no pooling: a pooled socket could belong to another check). */
  private request(url: URL, target: LookupAddress, signal: AbortSignal): Promise<IncomingMessage> {
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        {
          host: url.hostname.replace(/^\[|\]$/g, ''),
          port: url.port === '' ? undefined : Number(url.port),
          path: `${url.pathname}${url.search}`,
          method: 'GET',
          // identity: the byte limit then applies to the audio itself, and nothing needs decompressing.
          headers: { Host: url.host, 'User-Agent': USER_AGENT, Accept: '*/*', 'Accept-Encoding': 'identity' },
          agent: false,
          lookup: pinnedLookup(target),
          signal,
        },
        resolve,
      );
      req.once('error', reject);
      req.end();
    });
  }

  /** Streams the body to `destPath`, counting bytes; fails at the first byte over `maxBytes`. */
  private async save(res: IncomingMessage, destPath: string, maxBytes: number, signal: AbortSignal): Promise<number> {
    let size = 0;
    const tooLarge = () => this.tooLarge(maxBytes);
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        if (size > maxBytes) callback(tooLarge());
        else callback(null, chunk);
      },
    });
    await pipeline(res, counter, createWriteStream(destPath), { signal });
    return size;
  }

  private tooLarge(maxBytes: number, declared?: number): UrlFetchError {
    const size = declared === undefined ? 'more than' : `${declared} bytes, more than`;
    return new UrlFetchError('URL_TOO_LARGE', `the audio at audio_url is ${size} the ${maxBytes}-byte limit (MAX_FILE_SIZE)`, { max_bytes: maxBytes });
  }

  /** Maps a failure to UrlFetchError, except a caller's abort (its reason) and local file-system errors. */
  private translate(err: unknown, url: URL, callerSignal: AbortSignal | undefined, deadline: AbortSignal): unknown {
    if (err instanceof UrlFetchError) return err;
    if (callerSignal?.aborted) return callerSignal.reason;
    if (deadline.aborted) {
      return new UrlFetchError('URL_TIMEOUT', `fetching audio_url from ${url.host} took longer than ${this.options.timeoutMs} ms (URL_FETCH_TIMEOUT_MS)`, {
        timeout_ms: this.options.timeoutMs,
      });
    }
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === 'string' && NETWORK_ERROR.test(code)) {
      const reason =
        code === 'ENOTFOUND' || code.startsWith('EAI_') || code === 'ENODATA'
          ? `the host ${url.hostname} could not be resolved`
          : code === 'ECONNREFUSED'
            ? `${url.host} refused the connection`
            : code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE'
              ? `the connection to ${url.host} closed before the whole response arrived`
              : `fetching from ${url.host} failed (${code})`;
      return new UrlFetchError('URL_FETCH_FAILED', reason, { cause_code: code });
    }
    return err;
  }
}

/** Nest provider of UrlFetcher built from AppConfig (add to AudioModule's providers and exports). */
export const urlFetcherProvider: Provider = {
  provide: UrlFetcher,
  inject: [AppConfig],
  useFactory: (config: AppConfig) => UrlFetcher.fromConfig(config),
};
