import type { CorsOptions } from '@nestjs/common/interfaces/external/cors-options.interface.js';
import { corsOrigins, type AppConfig } from '../config/app-config.js';

/**
 * Response headers a browser page may read on a cross-origin response. Without this list a page
 * sees only the CORS-safelisted ones, so it could not honour `Retry-After` after a 429, read the
 * rate-limit budget, or name an export download.
 */
export const CORS_EXPOSED_HEADERS = ['Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'WWW-Authenticate', 'Content-Disposition', 'x-transcription-job-id', 'x-transcription-warnings', 'Idempotent-Replayed'];

/** Request headers a cross-origin page may send: the two ways of presenting an API key, and what uploads and SSE need. */
export const CORS_ALLOWED_HEADERS = ['Authorization', 'X-API-Key', 'Content-Type', 'Accept', 'Last-Event-ID'];

/**
 * Options for `app.enableCors()` from CORS_ORIGIN (`*`, a comma-separated list, or empty = CORS
 * off → `false`). Credentials (cookies) are not allowed: keys travel in headers, which a page
 * sends explicitly. Preflight (`OPTIONS`) requests are answered by the CORS middleware before
 * any guard runs, so they need no key.
 */
export function corsOptions(config: AppConfig): CorsOptions | false {
  const origin = corsOrigins(config);
  if (origin === false) return false;
  return { origin, allowedHeaders: CORS_ALLOWED_HEADERS, exposedHeaders: CORS_EXPOSED_HEADERS, credentials: false, maxAge: 600 };
}
