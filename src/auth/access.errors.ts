import { HttpStatus } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import { GatewayError } from '../common/gateway-error.js';

/** Why a request was turned away before it reached a controller. */
export type AccessErrorCode =
  /** No key in `Authorization: Bearer <key>` or `X-API-Key` while keys are configured. */
  | 'API_KEY_REQUIRED'
  /** A key was sent but it is none of API_KEYS / ASR_TOKEN. */
  | 'API_KEY_INVALID'
  /** The key (or client IP, without authentication) used up its requests for the minute. */
  | 'RATE_LIMITED';

/** HTTP status of every access error code. */
export const ACCESS_ERROR_STATUS: Record<AccessErrorCode, number> = {
  API_KEY_REQUIRED: HttpStatus.UNAUTHORIZED,
  API_KEY_INVALID: HttpStatus.FORBIDDEN,
  RATE_LIMITED: HttpStatus.TOO_MANY_REQUESTS,
};

/** Whether the same request may succeed later unchanged: only a rate limit passes by itself (after `Retry-After`). */
const ACCESS_ERROR_RETRYABLE: Record<AccessErrorCode, boolean> = {
  API_KEY_REQUIRED: false,
  API_KEY_INVALID: false,
  RATE_LIMITED: true,
};

/** Body of an access error: the gateway's error shape (`{statusCode, error, code, message, ...publicFields}`). */
export interface AccessErrorBody {
  statusCode: number;
  error: string;
  code: AccessErrorCode;
  message: string;
  [field: string]: unknown;
}

/**
 * Thrown by the access guards (ApiKeyGuard, RateLimitGuard). A GatewayError, so the global
 * ApiErrorFilter and the OpenAI-compatible filter render it like any other coded error; guard
 * exceptions reach them because Nest runs guards inside the route's exception zone.
 *
 * Response headers that go with it (`WWW-Authenticate` on 401, `Retry-After` on 429) are set by
 * the guard on the response before it throws; the filters keep headers already set. Never
 * carries the key, not even in `details`.
 */
export class AccessError extends GatewayError {
  constructor(
    readonly code: AccessErrorCode,
    message: string,
    /** Safe fields for the body, e.g. `{limit, retry_after}` (requests per minute, seconds) of a 429. */
    publicFields: Record<string, unknown> = {},
  ) {
    super(message, { status: ACCESS_ERROR_STATUS[code], retryable: ACCESS_ERROR_RETRYABLE[code], publicFields });
  }

  /** The error body as the gateway's error filter sends it: `{statusCode, error, code, message, ...publicFields}`. */
  body(): AccessErrorBody {
    return { statusCode: this.status, error: STATUS_CODES[this.status] ?? 'Error', ...this.publicFields, code: this.code, message: this.message };
  }
}
