import { ArgumentsHost, Catch, HttpStatus, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { STATUS_CODES } from 'node:http';

/** Failures of the contexts module's own rules. */
export type ContextErrorCode =
  /** No context with that id. */
  'CONTEXT_NOT_FOUND';

export class ContextError extends Error {
  constructor(
    readonly code: ContextErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ContextError';
  }
}

/** Raised by ContextsService when a context id does not exist (HTTP 404 `CONTEXT_NOT_FOUND`). */
export class ContextNotFoundError extends ContextError {
  constructor(readonly contextId: string) {
    super('CONTEXT_NOT_FOUND', `context ${contextId} does not exist (list them with GET /api/transcribe/contexts)`, { context_id: contextId });
    this.name = 'ContextNotFoundError';
  }
}

/** HTTP status of every ContextErrorCode. */
export const CONTEXT_ERROR_STATUS: Record<ContextErrorCode, number> = {
  CONTEXT_NOT_FOUND: HttpStatus.NOT_FOUND,
};

/**
 * Maps ContextError to the gateway's error body `{statusCode, error, code, message, ...details}`
 * (the shape of src/jobs/api-error.filter.ts). Other exceptions pass on to the global filter.
 */
@Catch(ContextError)
export class ContextErrorFilter implements ExceptionFilter {
  catch(exception: ContextError, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const statusCode = CONTEXT_ERROR_STATUS[exception.code];
    res.status(statusCode).json({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code: exception.code, message: exception.message, ...exception.details });
  }
}
