import type { Provider } from '@nestjs/common';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { dispositionFilename } from '../common/content-disposition.js';
import { safeFilename } from '../common/filename.js';
import { AddressRefusedError, bareHostname, guardedConnectOptions, type AddressPolicy, type HostResolver } from '../common/outbound/address-guard.js';
import { NEVER_ALLOWED, type AddressKind } from '../common/outbound/ip-ranges.js';
import { AppConfig } from '../config/app-config.js';
import { UrlFetchError } from './url-fetch.errors.js';

export type { HostResolver } from '../common/outbound/address-guard.js';

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
   * else the last segment of the final URL's path (percent-decoded), else `audio`; cleaned by
   * `safeFilename` (src/common/filename.ts: no directories or control characters, ≤ 200 UTF-8 bytes).
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

/** The file name of a download: Content-Disposition first, else the URL's last path segment. */
export function downloadFilename(headers: IncomingHttpHeaders, url: URL): string {
  const fromHeader = dispositionFilename(headers['content-disposition']);
  if (fromHeader) return safeFilename(fromHeader);
  const last = url.pathname.split('/').filter((s) => s !== '').pop() ?? '';
  let decoded = last;
  try {
    decoded = decodeURIComponent(last);
  } catch {
    // Keep the raw segment when it is not valid percent-encoding.
  }
  return safeFilename(decoded);
}

/**
 * Downloads the audio of an `audio_url` submission to a local file — the one class that makes
 * outbound HTTP requests for intake. Rules:
 *
 * - http and https only, no credentials in the URL;
 * - every address the host resolves to must be public (unless `allowPrivate`, which still refuses
 *   unspecified, multicast and broadcast addresses), checked when the socket connects and pinned
 *   to the checked addresses (src/common/outbound/address-guard.ts, shared with webhooks);
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
  private readonly policy: AddressPolicy;

  constructor(readonly options: UrlFetcherOptions) {
    this.policy = { allowPrivate: options.allowPrivate, ...(options.resolve ? { resolve: options.resolve } : {}) };
  }

  /** The fetcher configured by ALLOW_PRIVATE_URLS, URL_FETCH_TIMEOUT_MS and URL_MAX_REDIRECTS. */
  static fromConfig(config: AppConfig): UrlFetcher {
    return new UrlFetcher({ allowPrivate: config.ALLOW_PRIVATE_URLS, timeoutMs: config.URL_FETCH_TIMEOUT_MS, maxRedirects: config.URL_MAX_REDIRECTS });
  }

  /**
   * Fetches `rawUrl` into `destPath` (created or overwritten).
   *
   * @throws UrlFetchError URL_INVALID, URL_FORBIDDEN_ADDRESS (`address_kind`), URL_TOO_LARGE
   *   (`max_bytes`), URL_TIMEOUT (`timeout_ms`), URL_HTTP_ERROR (`upstream_status`),
   *   URL_TOO_MANY_REDIRECTS (`max_redirects`), URL_FETCH_FAILED
   * @throws the reason of `options.signal` when the caller aborts; a file-system error as it is
   */
  async download(rawUrl: string, destPath: string, options: DownloadOptions): Promise<FetchedAudio> {
    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
    let url = parseAudioUrl(rawUrl);
    try {
      for (let redirects = 0; ; redirects++) {
        const res = await this.request(url, signal);
        const status = res.statusCode ?? 0;
        if (REDIRECT_STATUSES.has(status) && res.headers.location) {
          res.destroy();
          if (redirects >= this.options.maxRedirects) {
            throw new UrlFetchError('URL_TOO_MANY_REDIRECTS', `audio_url was redirected more than ${this.options.maxRedirects} times (URL_MAX_REDIRECTS)`, {
              publicFields: { max_redirects: this.options.maxRedirects },
            });
          }
          url = parseAudioUrl(res.headers.location, url);
          continue;
        }
        if (status < 200 || status > 299) {
          res.destroy();
          throw new UrlFetchError('URL_HTTP_ERROR', `${url.host} answered HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`, {
            publicFields: { upstream_status: status },
          });
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > options.maxBytes) {
          res.destroy();
          throw this.tooLarge(options.maxBytes, declared);
        }
        const sizeBytes = await this.save(res, destPath, options.maxBytes, signal);
        const contentType = (res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase() || 'application/octet-stream';
        return { filename: downloadFilename(res.headers, url), contentType, sizeBytes };
      }
    } catch (err) {
      await rm(destPath, { force: true }).catch(() => undefined);
      throw this.translate(err, url, options.signal, deadline);
    }
  }

  /**
   * One GET on a fresh, guarded connection: the address check happens in the socket's lookup, so
   * the address checked is the address connected to.
   *
   * @throws AddressRefusedError (synchronously inside the promise) for a refused IP literal
   */
  private request(url: URL, signal: AbortSignal): Promise<IncomingMessage> {
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        {
          host: bareHostname(url),
          port: url.port === '' ? undefined : Number(url.port),
          path: `${url.pathname}${url.search}`,
          method: 'GET',
          // identity: the byte limit then applies to the audio itself, and nothing needs decompressing.
          headers: { Host: url.host, 'User-Agent': USER_AGENT, Accept: '*/*', 'Accept-Encoding': 'identity' },
          ...guardedConnectOptions(url, this.policy),
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
    return new UrlFetchError('URL_TOO_LARGE', `the audio at audio_url is ${size} the ${maxBytes}-byte limit (MAX_FILE_SIZE)`, { publicFields: { max_bytes: maxBytes } });
  }

  /** Maps a failure to UrlFetchError, except a caller's abort (its reason) and local file-system errors. */
  private translate(err: unknown, url: URL, callerSignal: AbortSignal | undefined, deadline: AbortSignal): unknown {
    if (err instanceof UrlFetchError) return err;
    if (err instanceof AddressRefusedError) return this.forbidden(err);
    if (callerSignal?.aborted) return callerSignal.reason;
    if (deadline.aborted) {
      return new UrlFetchError('URL_TIMEOUT', `fetching audio_url from ${url.host} took longer than ${this.options.timeoutMs} ms (URL_FETCH_TIMEOUT_MS)`, {
        publicFields: { timeout_ms: this.options.timeoutMs },
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
      return new UrlFetchError('URL_FETCH_FAILED', reason, { details: { cause_code: code, cause_message: (err as Error).message }, cause: err });
    }
    return err;
  }

  /** URL_FORBIDDEN_ADDRESS for a refused connection: the kind is public, the resolved address is not. */
  private forbidden(err: AddressRefusedError): UrlFetchError {
    const { kind, range } = err.addressClass;
    const subject = err.literal ? `the address ${err.host} is` : `the host ${err.host} resolves to`;
    const hint = NEVER_ALLOWED.has(kind) ? 'no server can be fetched from there' : 'the gateway fetches audio only from public addresses unless ALLOW_PRIVATE_URLS=true';
    return new UrlFetchError('URL_FORBIDDEN_ADDRESS', `${subject} ${ADDRESS_WORDS[kind]} address; ${hint}`, {
      publicFields: { address_kind: kind },
      details: { address: err.address, range },
    });
  }
}

/** Nest provider of UrlFetcher built from AppConfig (add to AudioModule's providers and exports). */
export const urlFetcherProvider: Provider = {
  provide: UrlFetcher,
  inject: [AppConfig],
  useFactory: (config: AppConfig) => UrlFetcher.fromConfig(config),
};
