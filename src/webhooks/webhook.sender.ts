import { Injectable } from '@nestjs/common';
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { addressAllowed, classifyAddress, isIpLiteral } from '../audio/ip-ranges.js';

/** How much of a non-2xx response body is kept in webhook_deliveries.error, in bytes. */
const ERROR_BODY_BYTES = 512;

/** The outcome of one POST. */
export interface SendOutcome {
  /** The receiver's HTTP status; null when no response came. */
  statusCode: number | null;
  /** Network error, timeout or refused address; for a response, null (the caller judges the status). */
  error: string | null;
  /** The first bytes of the response body (UTF-8, at most 512 bytes), for the delivery log. */
  responseExcerpt: string;
  /** True when the target address was refused by the address rule (src/audio/ip-ranges.ts; retrying cannot help). */
  refused: boolean;
  /** Milliseconds from sending to the end of the response or the failure. */
  durationMs: number;
}

/** Raised inside the connection's lookup when the host resolves to a refused address. */
class RefusedAddressError extends Error {
  constructor(readonly address: string) {
    const cls = classifyAddress(address);
    super(`refused to connect to ${address}, a ${cls.kind} address (${cls.range}); see ALLOW_PRIVATE_URLS`);
    this.name = 'RefusedAddressError';
  }
}

/** The first address a connection may not go to, or undefined when all are allowed. */
const refusedAmong = (addresses: string[], allowPrivate: boolean) => addresses.find((a) => !addressAllowed(classifyAddress(a), allowPrivate));

/**
 * node:dns lookup that refuses addresses the policy forbids. Doing the check in the socket's own
 * lookup (rather than resolving once beforehand) means the address checked is the address
 * connected to, so a DNS answer that changes between check and connect (DNS rebinding) cannot
 * slip through.
 */
const guardedLookup = (allowPrivate: boolean): LookupFunction => (hostname, options, callback) => {
  dnsLookup(hostname, options as LookupOptions, (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => {
    if (err) return (callback as (e: NodeJS.ErrnoException | null, a: string | LookupAddress[], f?: number) => void)(err, address, family);
    const refused = refusedAmong(Array.isArray(address) ? address.map((a) => a.address) : [address], allowPrivate);
    if (refused !== undefined) return (callback as (e: Error) => void)(new RefusedAddressError(refused));
    (callback as (e: null, a: string | LookupAddress[], f?: number) => void)(null, address, family);
  });
};

/**
 * The one class that makes outbound HTTP requests for webhooks (node:http/https). Redirects are not
 * followed: a 3xx counts as a failed attempt, because following it would sign a body for a URL the
 * client never registered.
 */
@Injectable()
export class WebhookSender {
  /**
   * POSTs `body` to `url` with `headers`, bounded by `timeoutMs` for the whole exchange.
   * Never throws: every failure is reported in the outcome.
   */
  async post(url: string, body: string, headers: Record<string, string>, options: { timeoutMs: number; allowPrivate: boolean }): Promise<SendOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const target = new URL(url);
    const literal = target.hostname.replace(/^\[|\]$/g, '');
    if (isIpLiteral(literal) && refusedAmong([literal], options.allowPrivate) !== undefined) {
      return { statusCode: null, error: new RefusedAddressError(literal).message, responseExcerpt: '', refused: true, durationMs: elapsed() };
    }
    const client = target.protocol === 'https:' ? https : http;
    return new Promise<SendOutcome>((resolve) => {
      let settled = false;
      const finish = (outcome: Omit<SendOutcome, 'durationMs'>) => {
        if (settled) return;
        settled = true;
        resolve({ ...outcome, durationMs: elapsed() });
      };
      const req = client.request(
        target,
        {
          method: 'POST',
          headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
          signal: AbortSignal.timeout(options.timeoutMs),
          lookup: guardedLookup(options.allowPrivate),
          // A fresh connection per attempt: a kept-alive socket would skip the address check.
          agent: false,
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (chunk: Buffer) => {
            if (kept < ERROR_BODY_BYTES) {
              chunks.push(chunk.subarray(0, ERROR_BODY_BYTES - kept));
              kept += Math.min(chunk.length, ERROR_BODY_BYTES - kept);
            }
          });
          res.on('end', () => finish({ statusCode: res.statusCode ?? null, error: null, responseExcerpt: Buffer.concat(chunks).toString('utf8'), refused: false }));
          res.on('error', (err) => finish({ statusCode: res.statusCode ?? null, error: describe(err, options.timeoutMs), responseExcerpt: '', refused: false }));
        },
      );
      req.on('error', (err) => finish({ statusCode: null, error: describe(err, options.timeoutMs), responseExcerpt: '', refused: err instanceof RefusedAddressError }));
      req.end(body);
    });
  }
}

function describe(err: Error, timeoutMs: number): string {
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return `no complete response within ${timeoutMs} ms (WEBHOOK_TIMEOUT_MS)`;
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
