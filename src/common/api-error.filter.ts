import { ArgumentsHost, Catch, HttpException, HttpStatus, Logger, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { rm } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { AppConfig } from '../config/app-config.js';
import { GatewayError } from '../common/gateway-error.js';
import { AudioError, type AudioErrorCode } from '../audio/audio.errors.js';
import { UnknownEngineError } from '../engines/engine-registry.js';
import { CONTEXT_ERROR_STATUS, ContextError } from '../contexts/contexts.errors.js';
import { ExportFormatError } from '../transcripts/exports.js';
import { AccessError } from '../auth/access.errors.js';
import { URL_FETCH_ERROR_STATUS, UrlFetchError } from '../audio/url-fetch.errors.js';
import { JobError, type JobErrorCode } from '../jobs/jobs.errors.js';
import { WEBHOOK_ERROR_STATUS, WebhookError } from '../webhooks/webhook.errors.js';
import { IDEMPOTENCY_ERROR_STATUS, IdempotencyError } from '../idempotency/idempotency.errors.js';

const AUDIO_STATUS: Record<AudioErrorCode, number> = {
  AUDIO_EMPTY: HttpStatus.BAD_REQUEST,
  AUDIO_UNREADABLE: HttpStatus.UNSUPPORTED_MEDIA_TYPE,
  AUDIO_NO_STREAM: HttpStatus.UNSUPPORTED_MEDIA_TYPE,
  AUDIO_TRUNCATED: HttpStatus.UNPROCESSABLE_ENTITY,
  AUDIO_DECODE_FAILED: HttpStatus.UNPROCESSABLE_ENTITY,
};

const JOB_STATUS: Record<JobErrorCode, number> = {
  JOB_NOT_FOUND: HttpStatus.NOT_FOUND,
  JOB_NOT_COMPLETED: HttpStatus.CONFLICT,
  FILE_REQUIRED: HttpStatus.BAD_REQUEST,
  INVALID_OPTION: HttpStatus.BAD_REQUEST,
  AUDIO_GONE: HttpStatus.GONE,
  RANGE_NOT_SATISFIABLE: HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
};

/** Error body of every API error: `{statusCode, error, code, message, ...details}`. */
export interface ApiErrorBody {
  statusCode: number;
  error: string;
  /** Machine-readable code, e.g. AUDIO_NO_STREAM, UNKNOWN_ENGINE, VALIDATION_FAILED. */
  code: string;
  /** What was wrong and what is accepted. */
  message: string | string[];
  [key: string]: unknown;
}

/**
 * Maps the gateway's domain errors (audio intake, engine lookup, jobs) to HTTP — every code
 * exhaustively through the tables above — and leaves Nest's own HttpExceptions as they are.
 */
@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(ApiErrorFilter.name);

  constructor(private readonly config: AppConfig) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const req = host.switchToHttp().getRequest<Request & { file?: { path?: string } }>();
    const body = this.toBody(exception, String(req.headers['content-type'] ?? '').startsWith('multipart/'));
    if (body.statusCode >= 500) this.logger.error(exception instanceof Error ? exception.stack : String(exception));
    const send = () => {
      if (res.headersSent) {
        res.end();
        return;
      }
      res.status(body.statusCode).json(body);
    };
    // A rejected request's upload is removed before the answer, so no client sees it answered while
    // the file remains (multer's own clean-up only starts once the response has closed).
    if (req.file?.path) void rm(req.file.path, { force: true }).catch(() => undefined).then(send);
    else send();
  }

  private toBody(exception: unknown, multipart: boolean): ApiErrorBody {
    const reason = (status: number) => STATUS_CODES[status] ?? 'Error';
    if (exception instanceof GatewayError) {
      return { statusCode: exception.status, error: reason(exception.status), ...exception.toPublic() };
    }
    if (exception instanceof AudioError) {
      const statusCode = AUDIO_STATUS[exception.code];
      return { statusCode, error: reason(statusCode), code: exception.code, message: exception.message, accepted: 'any audio or video file ffmpeg can decode, with at least one audio stream' };
    }
    if (exception instanceof UnknownEngineError) {
      return { statusCode: 400, error: 'Bad Request', code: 'UNKNOWN_ENGINE', message: exception.message, available_engines: exception.available };
    }
    if (exception instanceof AccessError) return exception.body() as ApiErrorBody;
    if (exception instanceof UrlFetchError) {
      const statusCode = URL_FETCH_ERROR_STATUS[exception.code];
      return { statusCode, error: reason(statusCode), code: exception.code, message: exception.message, ...exception.details };
    }
    if (exception instanceof ExportFormatError) {
      return { statusCode: 400, error: 'Bad Request', code: exception.code, message: exception.message, accepted_formats: exception.accepted };
    }
    if (exception instanceof ContextError) {
      const statusCode = CONTEXT_ERROR_STATUS[exception.code];
      return { statusCode, error: reason(statusCode), code: exception.code, message: exception.message, ...exception.details };
    }
    if (exception instanceof WebhookError) {
      const statusCode = WEBHOOK_ERROR_STATUS[exception.code];
      return { statusCode, error: reason(statusCode), code: exception.code, message: exception.message, ...exception.details };
    }
    if (exception instanceof IdempotencyError) {
      const statusCode = IDEMPOTENCY_ERROR_STATUS[exception.code];
      return { statusCode, error: reason(statusCode), code: exception.code, message: exception.message, ...exception.details };
    }
    if (exception instanceof JobError) {
      const statusCode = JOB_STATUS[exception.code];
      return { statusCode, error: reason(statusCode), code: exception.code, message: exception.message, ...exception.details };
    }
    if (exception instanceof HttpException) {
      const statusCode = exception.getStatus();
      const response = exception.getResponse();
      const message = typeof response === 'string' ? response : ((response as { message?: string | string[] }).message ?? exception.message);
      const code = statusCode === 400 && Array.isArray(message) ? 'VALIDATION_FAILED' : (HttpStatus[statusCode] ?? 'HTTP_ERROR').toString();
      if (statusCode === HttpStatus.PAYLOAD_TOO_LARGE && !multipart) {
        return { statusCode, error: reason(statusCode), code, message: 'the JSON body is larger than the 1 MiB limit' };
      }
      if (statusCode === HttpStatus.PAYLOAD_TOO_LARGE) {
        return { statusCode, error: reason(statusCode), code, message: `the file is larger than the ${this.config.MAX_FILE_SIZE}-byte limit (MAX_FILE_SIZE)`, max_file_size: this.config.MAX_FILE_SIZE };
      }
      const unexpected = typeof message === 'string' ? /^Unexpected file field - (.+)$/.exec(message) : null;
      if (typeof message === 'string' && /^Too many files/i.test(message)) {
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
