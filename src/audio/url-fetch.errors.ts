import { GatewayError } from '../common/gateway-error.js';

/** Why the audio at an `audio_url` could not be fetched. Every code is a 4xx: the URL is the client's. */
export type UrlFetchErrorCode =
  /** Not an absolute http(s) URL, or a URL with credentials (`user:pass@`). Also for a redirect to such a URL. */
  | 'URL_INVALID'
  /** The host is (or resolves to) a private, loopback, link-local or otherwise non-public address and ALLOW_PRIVATE_URLS is off; also multicast/unspecified addresses always. */
  | 'URL_FORBIDDEN_ADDRESS'
  /** The body is larger than the byte limit (MAX_FILE_SIZE): by its Content-Length, or counted while streaming. */
  | 'URL_TOO_LARGE'
  /** The download (redirects, headers and body together) took longer than URL_FETCH_TIMEOUT_MS. */
  | 'URL_TIMEOUT'
  /** The server answered with a status other than 2xx (or a 3xx without Location); `upstream_status` holds it. */
  | 'URL_HTTP_ERROR'
  /** More redirects than URL_MAX_REDIRECTS. */
  | 'URL_TOO_MANY_REDIRECTS'
  /** The host name does not resolve, the connection or TLS handshake failed, or the connection closed before the whole body arrived. */
  | 'URL_FETCH_FAILED';

/**
 * HTTP status of each code. 400: the URL itself is unacceptable. 413: like an oversized upload.
 * 422: the URL is acceptable but what it points to could not be fetched — not 408 (that means
 * the client's own request was slow) nor 502/504 (those read as a gateway fault worth retrying).
 */
export const URL_FETCH_ERROR_STATUS: Record<UrlFetchErrorCode, number> = {
  URL_INVALID: 400,
  URL_FORBIDDEN_ADDRESS: 400,
  URL_TOO_LARGE: 413,
  URL_TIMEOUT: 422,
  URL_HTTP_ERROR: 422,
  URL_TOO_MANY_REDIRECTS: 422,
  URL_FETCH_FAILED: 422,
};

/** Upstream statuses after which the same fetch may succeed later (the AI SDK's APICallError rule). */
const RETRYABLE_UPSTREAM = (status: number) => status === 408 || status === 409 || status === 429 || status >= 500;

/** Public fields a URL fetch error may carry (all safe: limits the gateway applies, what the far side answered). */
export interface UrlFetchPublicFields {
  /** The HTTP status the audio host answered with (URL_HTTP_ERROR). */
  upstream_status?: number;
  /** MAX_FILE_SIZE in bytes (URL_TOO_LARGE). */
  max_bytes?: number;
  /** URL_MAX_REDIRECTS (URL_TOO_MANY_REDIRECTS). */
  max_redirects?: number;
  /** URL_FETCH_TIMEOUT_MS in milliseconds (URL_TIMEOUT). */
  timeout_ms?: number;
  /** What kind of address was refused (`loopback`, `private`…; URL_FORBIDDEN_ADDRESS). */
  address_kind?: string;
}

/**
 * A failed `audio_url` download. Messages name the host the client gave, never the full URL
 * (presigned URLs carry credentials in their query) and never the addresses a host resolved to:
 * those, and the network error codes, are private `details`.
 *
 * `retryable`: timeouts, network failures and upstream 408/409/429/5xx may pass later.
 */
export class UrlFetchError extends GatewayError {
  constructor(
    readonly code: UrlFetchErrorCode,
    message: string,
    fields: { publicFields?: UrlFetchPublicFields; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    const upstream = fields.publicFields?.upstream_status;
    super(message, {
      status: URL_FETCH_ERROR_STATUS[code],
      retryable: code === 'URL_TIMEOUT' || code === 'URL_FETCH_FAILED' || (code === 'URL_HTTP_ERROR' && upstream !== undefined && RETRYABLE_UPSTREAM(upstream)),
      publicFields: { ...fields.publicFields },
      details: fields.details,
      cause: fields.cause,
    });
  }
}
