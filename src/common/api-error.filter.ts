import { ArgumentsHost, Catch, HttpException, HttpStatus, Inject, Logger, Optional, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { rm } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { AppConfig } from '../config/app-config.js';
import { GatewayError } from './gateway-error.js';

/** Error body of every API error: `{statusCode, error, code, message, ...details}`. */
export interface ApiErrorBody {
  statusCode: number;
  error: string;
  /** Machine-readable code, e.g. AUDIO_NO_STREAM, UNKNOWN_ENGINE, VALIDATION_FAILED. */
  code: string;
  /** What was wrong and what is accepted: always one string. */
  message: string;
  [key: string]: unknown;
}

/**
 * A filter that answers the requests under `prefix` (a path such as `/v1`, matched whole or
 * followed by `/`) in its own error shape, for the errors raised outside that prefix's
 * controllers: unknown routes, body parsing. The OpenAI-compatible API registers one for `/v1`.
 */
export interface PrefixedErrorFilter {
  prefix: string;
  filter: ExceptionFilter;
}

/** DI token: the {@link PrefixedErrorFilter}s of the modules loaded (an array; absent = none). */
export const PREFIXED_ERROR_FILTERS = Symbol('PREFIXED_ERROR_FILTERS');

/**
 * The one error filter of the gateway's own API: every GatewayError by its status and public
 * part (each module's status table is exhaustive over its codes), Nest's HttpExceptions (routing,
 * validation, multer limits) with the gateway's body shape, anything else a 500 with no detail
 * (the stack goes to the log). The OpenAI-compatible routes answer in OpenAI's shape instead
 * (OpenAiErrorFilter on their controller; for the rest of `/v1`, such as unknown routes, through
 * PREFIXED_ERROR_FILTERS).
 */
@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(ApiErrorFilter.name);

  constructor(
    private readonly config: AppConfig,
    @Optional() @Inject(PREFIXED_ERROR_FILTERS) private readonly prefixed: readonly PrefixedErrorFilter[] = [],
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const req = host.switchToHttp().getRequest<Request & { file?: { path?: string } }>();
    const path = req.path ?? '';
    const owner = (this.prefixed ?? []).find(({ prefix }) => path === prefix || path.startsWith(`${prefix}/`));
    if (owner) {
      owner.filter.catch(exception, host);
      return;
    }
    const body = this.toBody(exception, String(req.headers['content-type'] ?? '').startsWith('multipart/'));
    if (body.statusCode >= 500) this.logger.error(exception instanceof Error ? exception.stack : String(exception));
    const send = () => {
      if (res.headersSent) {
        res.end();
        return;
      }
      setRetryAfter(res, exception);
      res.status(body.statusCode).json(body);
    };
    // A rejected request's upload is removed before the answer, so no client sees it answered while
    // the file remains (multer's own clean-up only starts once the response has closed).
    if (req.file?.path) void rm(req.file.path, { force: true }).catch(() => undefined).then(send);
    else send();
  }

  private toBody(exception: unknown, multipart: boolean): ApiErrorBody {
    const reason = (status: number) => STATUS_CODES[status] ?? 'Error';
    // Every module's errors: status, code, public message and safe fields; private details never leave.
    if (exception instanceof GatewayError) {
      return { statusCode: exception.status, error: reason(exception.status), ...exception.toPublic() };
    }
    if (exception instanceof HttpException) {
      const statusCode = exception.getStatus();
      const response = exception.getResponse();
      const raw = typeof response === 'string' ? response : ((response as { message?: string | string[] }).message ?? exception.message);
      // Routes validate through createValidationPipe (one string); a list can only come from a pipe built elsewhere.
      const message = Array.isArray(raw) ? raw.map(String).join('; ') : String(raw);
      const code = statusCode === 400 && Array.isArray(raw) ? 'VALIDATION_FAILED' : (HttpStatus[statusCode] ?? 'HTTP_ERROR').toString();
      if (statusCode === HttpStatus.PAYLOAD_TOO_LARGE && !multipart) {
        return { statusCode, error: reason(statusCode), code, message: 'the JSON body is larger than the 1 MiB limit' };
      }
      if (statusCode === HttpStatus.PAYLOAD_TOO_LARGE) {
        return { statusCode, error: reason(statusCode), code, message: `the file is larger than the ${this.config.MAX_FILE_SIZE}-byte limit (MAX_FILE_SIZE)`, max_file_size: this.config.MAX_FILE_SIZE };
      }
      const route = statusCode === HttpStatus.NOT_FOUND ? /^Cannot (\S+) (.+)$/.exec(message) : null;
      if (route) {
        return { statusCode, error: reason(statusCode), code: 'ROUTE_NOT_FOUND', message: `no route ${route[1]} ${route[2].split('?')[0]}; the API's routes are listed at /docs` };
      }
      const unexpected = /^Unexpected file field - (.+)$/.exec(message);
      if (/^Too many files/i.test(message)) {
        return { statusCode, error: reason(statusCode), code: 'TOO_MANY_FILES', message: "send exactly one file, in the multipart field 'file' (one file per request)" };
      }
      if (unexpected) {
        return { statusCode, error: reason(statusCode), code: 'UNEXPECTED_FILE_FIELD', message: `unexpected file field '${unexpected[1]}': send the audio as the multipart field 'file' (one file per request)` };
      }
      return { statusCode, error: reason(statusCode), code, message };
    }
    return { statusCode: 500, error: 'Internal Server Error', code: 'INTERNAL', message: 'internal error' };
  }
}

/**
 * `Retry-After` (seconds) for a GatewayError that says when to retry (`retry_after` among its
 * public fields, e.g. a quota's 429), unless a guard already set it.
 */
export function setRetryAfter(res: Response, exception: unknown): void {
  const retryAfter = exception instanceof GatewayError ? exception.publicFields.retry_after : undefined;
  if (typeof retryAfter === 'number' && !res.getHeader('retry-after')) res.setHeader('Retry-After', String(Math.ceil(retryAfter)));
}
