import { ArgumentsHost, Catch, HttpStatus, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { STATUS_CODES } from 'node:http';

/** Failures of a submission's `callback_url`. */
export type WebhookErrorCode =
  /** Not an absolute http(s) URL, longer than 2048 characters, or carries user:password. */
  | 'CALLBACK_URL_INVALID'
  /** The host is, or resolves to, a private, loopback, link-local or reserved address (ALLOW_PRIVATE_URLS=false). */
  | 'CALLBACK_URL_FORBIDDEN'
  /** WEBHOOK_SECRET is not set, so webhooks could not be signed: callback_url is refused. */
  | 'WEBHOOKS_NOT_CONFIGURED';

export class WebhookError extends Error {
  constructor(
    readonly code: WebhookErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'WebhookError';
  }
}

/** HTTP status of every WebhookErrorCode: all are the client's to fix. */
export const WEBHOOK_ERROR_STATUS: Record<WebhookErrorCode, number> = {
  CALLBACK_URL_INVALID: HttpStatus.BAD_REQUEST,
  CALLBACK_URL_FORBIDDEN: HttpStatus.BAD_REQUEST,
  WEBHOOKS_NOT_CONFIGURED: HttpStatus.BAD_REQUEST,
};

/**
 * Maps WebhookError to the gateway's error body `{statusCode, error, code, message, ...details}`
 * (the shape of src/jobs/api-error.filter.ts), for controllers that do not go through that filter.
 */
@Catch(WebhookError)
export class WebhookErrorFilter implements ExceptionFilter {
  catch(exception: WebhookError, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const statusCode = WEBHOOK_ERROR_STATUS[exception.code];
    res.status(statusCode).json({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code: exception.code, message: exception.message, ...exception.details });
  }
}
