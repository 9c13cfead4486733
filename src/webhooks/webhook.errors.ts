import { HttpStatus } from '@nestjs/common';
import { GatewayError } from '../common/gateway-error.js';

/** Failures of a submission's `callback_url`. */
export type WebhookErrorCode =
  /** Not an absolute http(s) URL, longer than 2048 characters, carries user:password, or its host does not resolve. */
  | 'CALLBACK_URL_INVALID'
  /** The host is, or resolves to, a private, loopback, link-local or reserved address (ALLOW_PRIVATE_URLS=false), or one no receiver can listen on. */
  | 'CALLBACK_URL_FORBIDDEN'
  /** WEBHOOK_SECRET is not set, so webhooks could not be signed: callback_url is refused. */
  | 'WEBHOOKS_NOT_CONFIGURED';

/** HTTP status of every WebhookErrorCode: all are the client's to fix. */
export const WEBHOOK_ERROR_STATUS: Record<WebhookErrorCode, number> = {
  CALLBACK_URL_INVALID: HttpStatus.BAD_REQUEST,
  CALLBACK_URL_FORBIDDEN: HttpStatus.BAD_REQUEST,
  WEBHOOKS_NOT_CONFIGURED: HttpStatus.BAD_REQUEST,
};

/**
 * A refused `callback_url` (HTTP 400, not retryable). Public fields: `callback_url` (the first 200
 * characters of what the client sent) and, for CALLBACK_URL_FORBIDDEN, `address_kind`. The
 * addresses a host name resolved to are private `details`: a name may resolve to an internal host.
 */
export class WebhookError extends GatewayError {
  constructor(
    readonly code: WebhookErrorCode,
    message: string,
    fields: { publicFields?: { callback_url?: string; address_kind?: string }; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { status: WEBHOOK_ERROR_STATUS[code], publicFields: { ...fields.publicFields }, details: fields.details, cause: fields.cause });
  }
}
