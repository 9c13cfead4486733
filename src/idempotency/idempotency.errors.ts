import { HttpStatus } from '@nestjs/common';
import { GatewayError } from '../common/gateway-error.js';

/** Failures of the `Idempotency-Key` rules (docs/webhooks.md, "Idempotency-Key"). */
export type IdempotencyErrorCode =
  /** The header is empty, longer than 255 characters, or has characters outside printable ASCII. */
  | 'IDEMPOTENCY_KEY_INVALID'
  /** The key was used within IDEMPOTENCY_TTL_HOURS for a request with a different body. */
  | 'IDEMPOTENCY_KEY_REUSED'
  /** A request with this key and body is still being processed; retry once it has answered. */
  | 'IDEMPOTENCY_IN_PROGRESS';

/** HTTP status of every IdempotencyErrorCode. */
export const IDEMPOTENCY_ERROR_STATUS: Record<IdempotencyErrorCode, number> = {
  IDEMPOTENCY_KEY_INVALID: HttpStatus.BAD_REQUEST,
  IDEMPOTENCY_KEY_REUSED: HttpStatus.CONFLICT,
  IDEMPOTENCY_IN_PROGRESS: HttpStatus.CONFLICT,
};

/**
 * A request refused by the `Idempotency-Key` rules. Only IDEMPOTENCY_IN_PROGRESS is retryable
 * (the same request, once the first has answered); its public field `retry_after_sec` says when.
 * Messages quote the client's own key, nothing else.
 */
export class IdempotencyError extends GatewayError {
  constructor(
    readonly code: IdempotencyErrorCode,
    message: string,
    publicFields: { retry_after_sec?: number } = {},
  ) {
    super(message, { status: IDEMPOTENCY_ERROR_STATUS[code], retryable: code === 'IDEMPOTENCY_IN_PROGRESS', publicFields: { ...publicFields } });
  }
}
