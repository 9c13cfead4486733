import { HttpStatus } from '@nestjs/common';
import { GatewayError } from '../common/gateway-error.js';

/** Failures of the contexts module's own rules. */
export type ContextErrorCode =
  /** No context with that id. */
  'CONTEXT_NOT_FOUND';

/** HTTP status of every ContextErrorCode. */
export const CONTEXT_ERROR_STATUS: Record<ContextErrorCode, number> = {
  CONTEXT_NOT_FOUND: HttpStatus.NOT_FOUND,
};

/**
 * A coded error of the contexts module, answered by the gateway's global error filter like every
 * GatewayError (`{statusCode, error, code, message, ...publicFields}`).
 */
export class ContextError extends GatewayError {
  constructor(
    readonly code: ContextErrorCode,
    message: string,
    publicFields: Record<string, unknown> = {},
  ) {
    super(message, { status: CONTEXT_ERROR_STATUS[code], publicFields });
  }
}

/** Raised by ContextsService when a context id does not exist (HTTP 404 `CONTEXT_NOT_FOUND`, public field `context_id`). */
export class ContextNotFoundError extends ContextError {
  constructor(readonly contextId: string) {
    super('CONTEXT_NOT_FOUND', `context ${contextId} does not exist (list them with GET /api/transcribe/contexts)`, { context_id: contextId });
  }
}
