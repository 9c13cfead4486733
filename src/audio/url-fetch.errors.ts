/** Why the audio at an `audio_url` could not be fetched. The HTTP layer maps every code to a 4xx. */
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

/**
 * A failed `audio_url` download. Messages name the host, never the full URL (presigned URLs
 * carry credentials in their query), and never the addresses a host resolved to.
 */
export class UrlFetchError extends Error {
  constructor(
    readonly code: UrlFetchErrorCode,
    message: string,
    /** Extra fields for the error body: `upstream_status`, `max_bytes`, `max_redirects`, `timeout_ms`. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'UrlFetchError';
  }
}
