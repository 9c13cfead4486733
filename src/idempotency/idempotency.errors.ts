import { ArgumentsHost, Catch, HttpStatus, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { STATUS_CODES } from 'node:http';

/** Failures of the `Idempotency-Key` rules (docs/webhooks.md, "Idempotency-Key"). */
export type IdempotencyErrorCode =
  /** The header is empty, longer than 255 characters, or has characters outside printable ASCII. */
  | 'IDEMPOTENCY_KEY_INVALID'
  /** The key was used within IDEMPOTENCY_TTL_HOURS for a request with a different body. */
  | 'IDEMPOTENCY_KEY_REUSED'
  /** A request with this key and body is still being processed; retry once it has answered. */
  | 'IDEMPOTENCY_IN_PROGRESS';

export class IdempotencyError extends Error {
  constructor(
    readonly code: IdempotencyErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'IdempotencyError';
  }
}

/** HTTP status of every IdempotencyErrorCode. */
export const IDEMPOTENCY_ERROR_STATUS: Record<IdempotencyErrorCode, number> = {
  IDEMPOTENCY_KEY_INVALID: HttpStatus.BAD_REQUEST,
  IDEMPOTENCY_KEY_REUSED: HttpStatus.CONFLICT,
  IDEMPOTENCY_IN_PROGRESS: HttpStatus.CONFLICT,
};

/**
 * Maps IdempotencyError to the gateway's error body `{statusCode, error, code, message, ...details}`
 * (the shape of src/jobs/api-error.filter.ts), for controllers that do not go through that filter.
 */
@Catch(IdempotencyError)
export class IdempotencyErrorFilter implements ExceptionFilter {
  catch(exception: IdempotencyError, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const statusCode = IDEMPOTENCY_ERROR_STATUS[exception.code];
    res.status(statusCode).json({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code: exception.code, message: exception.message, ...exception.details });
  }
}
