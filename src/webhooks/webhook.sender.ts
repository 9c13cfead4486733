import { Injectable } from '@nestjs/common';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { AddressRefusedError, guardedConnectOptions, type HostResolver } from '../common/outbound/address-guard.js';

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
  /** True when the target address was refused by the address rule (src/common/outbound/; retrying cannot help). */
  refused: boolean;
  /** Milliseconds from sending to the end of the response or the failure. */
  durationMs: number;
}

/** Options of {@link WebhookSender.post}. */
export interface SendOptions {
  /** WEBHOOK_TIMEOUT_MS: milliseconds for the whole exchange (connect, request, response). */
  timeoutMs: number;
  /** ALLOW_PRIVATE_URLS. */
  allowPrivate: boolean;
  /** Host name resolution; tests map names to their own receiver. Default: the OS resolver. */
  resolve?: HostResolver;
}

/**
 * The one class that makes outbound HTTP requests for webhooks (node:http/https). Every attempt
 * connects through the shared address guard (src/common/outbound/address-guard.ts): the callback
 * host is resolved and checked when the socket connects, so a name that resolved to a public
 * address at submission and to an internal one now is refused. Redirects are not followed: a 3xx
 * counts as a failed attempt, because following it would sign a body for a URL the client never
 * registered.
 */
@Injectable()
export class WebhookSender {
  /**
   * POSTs `body` to `url` with `headers`, bounded by `timeoutMs` for the whole exchange.
   * Never throws: every failure is reported in the outcome.
   */
  async post(url: string, body: string, headers: Record<string, string>, options: SendOptions): Promise<SendOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const target = new URL(url);
    let guard: ReturnType<typeof guardedConnectOptions>;
    try {
      guard = guardedConnectOptions(target, { allowPrivate: options.allowPrivate, ...(options.resolve ? { resolve: options.resolve } : {}) });
    } catch (err) {
      return { statusCode: null, error: (err as Error).message, responseExcerpt: '', refused: err instanceof AddressRefusedError, durationMs: elapsed() };
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
          ...guard,
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
      req.on('error', (err) => finish({ statusCode: null, error: describe(err, options.timeoutMs), responseExcerpt: '', refused: err instanceof AddressRefusedError }));
      req.end(body);
    });
  }
}

function describe(err: Error, timeoutMs: number): string {
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return `no complete response within ${timeoutMs} ms (WEBHOOK_TIMEOUT_MS)`;
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
