import { HttpException, HttpStatus } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';

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

/** Body of an access error: the gateway's error shape (`{statusCode, error, code, message, ...details}`). */
export interface AccessErrorBody {
  statusCode: number;
  error: string;
  code: AccessErrorCode;
  message: string;
  [detail: string]: unknown;
}

/**
 * Thrown by the access guards. An HttpException whose response is already the gateway's error
 * body, so it renders the same through Nest's default handler and through ApiErrorFilter.
 * Response headers that go with it (`WWW-Authenticate`, `Retry-After`) are set by the guard on
 * the response before it throws. Never carries the key.
 */
export class AccessError extends HttpException {
  constructor(
    readonly code: AccessErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    const statusCode = ACCESS_ERROR_STATUS[code];
    const body: AccessErrorBody = { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...details };
    super(body, statusCode);
    this.name = 'AccessError';
  }

  /** The error body as sent to the client. */
  body(): AccessErrorBody {
    return this.getResponse() as AccessErrorBody;
  }
}
