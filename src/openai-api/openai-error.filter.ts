import { ArgumentsHost, Catch, HttpException, HttpStatus, Logger, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { rm } from 'node:fs/promises';
import { AudioError } from '../audio/audio.errors.js';
import { AppConfig } from '../config/app-config.js';
import { GatewayError } from '../common/gateway-error.js';
import { RequestValidationError } from '../common/request-validation.js';
import { UnknownEngineError } from '../engines/engine-registry.js';
import { JobError, type JobErrorCode } from '../jobs/jobs.errors.js';
import { TRANSCRIPTION_FIELDS } from './dto/transcription-request.dto.js';
import { OpenAiError } from './openai-error.js';
import { setRetryAfter } from '../common/api-error.filter.js';

/** How each JobError code is answered in OpenAI's shape. */
const JOB_ERRORS: Record<JobErrorCode, { status: number; param: string | null; code: string }> = {
  FILE_REQUIRED: { status: HttpStatus.BAD_REQUEST, param: 'file', code: 'missing_required_parameter' },
  INVALID_OPTION: { status: HttpStatus.BAD_REQUEST, param: null, code: 'invalid_value' },
  JOB_NOT_FOUND: { status: HttpStatus.NOT_FOUND, param: null, code: 'job_not_found' },
  JOB_DELETED: { status: HttpStatus.GONE, param: null, code: 'job_deleted' },
  // The two below cannot follow a completed wait; if they do, it is the server's fault.
  JOB_NOT_COMPLETED: { status: HttpStatus.INTERNAL_SERVER_ERROR, param: null, code: 'job_not_completed' },
  AUDIO_GONE: { status: HttpStatus.INTERNAL_SERVER_ERROR, param: null, code: 'audio_gone' },
  RANGE_NOT_SATISFIABLE: { status: HttpStatus.INTERNAL_SERVER_ERROR, param: null, code: 'range_not_satisfiable' },
};

/** class-validator's message for a field the DTO does not declare (a ValidationPipe built without createValidationPipe). */
const UNKNOWN_PROPERTY = /^property (\S+) should not exist$/;

/** The routes of this API, named in the answer to an unknown URL under `/v1`. */
export const OPENAI_ROUTES: readonly string[] = ['POST /v1/audio/transcriptions', 'POST /v1/audio/translations', 'GET /v1/models', 'GET /v1/models/{model}'];

/** OpenAI's `code` for each kind of field problem. */
const FIELD_PROBLEM_CODES = { unknown: 'unknown_parameter', missing: 'missing_required_parameter', invalid: 'invalid_value' } as const;

/**
 * Answers every error of the OpenAI-compatible controller in OpenAI's shape,
 * `{"error": {message, type, param, code}}`, so the SDKs raise their usual exceptions. Bound to
 * that controller only (`@UseFilters`); the rest of the API keeps the gateway's error shape.
 *
 * - audio that cannot be used (empty, not audio, no audio stream, truncated) → 400 with the
 *   gateway's code lower-cased (`audio_unreadable`…), param `file` — OpenAI answers bad files 400
 * - unknown engine → 404 `model_not_found`; missing file → 400 `missing_required_parameter`
 * - validation (RequestValidationError) → 400 with the first failing field as `param` and its
 *   kind as `code` (`invalid_value`, `missing_required_parameter`, `unknown_parameter`); over
 *   MAX_FILE_SIZE → 413 `file_too_large`
 * - an unknown URL under `/v1` → 404 `unknown_url` naming the routes that exist (OpenAI's code);
 *   a known URL with another method → 405 `method_not_allowed` with `Allow`
 * - other HTTP errors (401/403 API keys, 429 rate limits) keep their status; their gateway
 *   code, lower-cased, becomes `code`; anything else → 500 `internal_error`
 *
 * A multipart upload still on disk when the request fails (validation runs after multer wrote
 * it) is removed.
 */
@Catch()
export class OpenAiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(OpenAiErrorFilter.name);

  constructor(private readonly config: AppConfig) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const req = host.switchToHttp().getRequest<Request & { file?: { path?: string } }>();
    const error = this.toError(exception);
    if (error.status >= 500 && !(exception instanceof OpenAiError)) {
      this.logger.error(exception instanceof Error ? (exception.stack ?? exception.message) : String(exception));
    }
    const send = () => {
      if (res.headersSent) {
        res.end();
        return;
      }
      for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
      setRetryAfter(res, exception);
      res.status(error.status).json(error.body());
    };
    // Answered once the upload is gone, so a client never sees its request end while the file remains.
    if (req.file?.path) void rm(req.file.path, { force: true }).catch(() => undefined).then(send);
    else send();
  }

  private toError(exception: unknown): OpenAiError {
    if (exception instanceof OpenAiError) return exception;
    if (exception instanceof AudioError) {
      return new OpenAiError(400, `${exception.message}; send any audio or video file ffmpeg can decode, with at least one audio stream (flac, mp3, mp4, m4a, ogg, wav, webm…)`, 'invalid_request_error', 'file', exception.code.toLowerCase());
    }
    if (exception instanceof UnknownEngineError) {
      return new OpenAiError(404, `The model '${exception.requested}' does not exist. ${exception.message}`, 'invalid_request_error', 'model', 'model_not_found');
    }
    if (exception instanceof RequestValidationError) {
      const first = exception.problems[0];
      if (!first) return new OpenAiError(400, exception.message, 'invalid_request_error', null, 'invalid_value');
      // OpenAI names the first field at fault; the message keeps every field's problem.
      const param = first.field.split('.')[0];
      const others = exception.problems.slice(1).map((p) => p.message);
      const message =
        first.kind === 'unknown'
          ? [`Unrecognized request argument supplied: ${param}${first.accepted?.length ? ` (accepted: ${first.accepted.join(', ')})` : ''}`, ...others].join('; ')
          : exception.message;
      return new OpenAiError(400, message, 'invalid_request_error', param, FIELD_PROBLEM_CODES[first.kind]);
    }
    if (exception instanceof JobError) {
      const { status, param, code } = JOB_ERRORS[exception.code];
      return new OpenAiError(status, exception.message, undefined, param, code);
    }
    if (exception instanceof GatewayError) {
      const { status } = exception;
      // OpenAI's own codes where the SDKs look for them; the gateway's code lower-cased otherwise.
      if (status === HttpStatus.UNAUTHORIZED || status === HttpStatus.FORBIDDEN) return new OpenAiError(status, exception.message, 'invalid_request_error', null, 'invalid_api_key');
      if (status === HttpStatus.TOO_MANY_REQUESTS) return new OpenAiError(status, exception.message, 'requests', null, 'rate_limit_exceeded');
      return new OpenAiError(status, exception.message, undefined, null, exception.code.toLowerCase());
    }
    if (exception instanceof HttpException) return this.fromHttpException(exception);
    return new OpenAiError(500, 'The server had an error while processing your request.', 'server_error', null, 'internal_error');
  }

  private fromHttpException(exception: HttpException): OpenAiError {
    const status = exception.getStatus();
    const response = exception.getResponse();
    const raw = typeof response === 'string' ? response : ((response as { message?: unknown }).message ?? exception.message);
    const messages = (Array.isArray(raw) ? raw : [raw]).map(String);
    const route = status === HttpStatus.NOT_FOUND ? /^Cannot (\S+) (.+)$/.exec(messages[0] ?? '') : null;
    if (route) {
      const url = `${route[1]} ${route[2].split('?')[0]}`;
      return new OpenAiError(404, `Unknown request URL: ${url}. This gateway serves ${OPENAI_ROUTES.join(', ')} (see /docs).`, 'invalid_request_error', null, 'unknown_url');
    }
    if (status === HttpStatus.PAYLOAD_TOO_LARGE) {
      return new OpenAiError(413, `Maximum content size limit (${this.config.MAX_FILE_SIZE} bytes, MAX_FILE_SIZE) exceeded.`, 'invalid_request_error', 'file', 'file_too_large');
    }
    if (status === HttpStatus.BAD_REQUEST && Array.isArray(raw)) {
      const unknown = messages.map((m) => UNKNOWN_PROPERTY.exec(m)?.[1]).find(Boolean);
      if (unknown) return new OpenAiError(400, `Unrecognized request argument supplied: ${unknown}`, 'invalid_request_error', unknown, 'unknown_parameter');
      return new OpenAiError(400, messages.join('; '), 'invalid_request_error', paramOf(messages[0] ?? ''), 'invalid_value');
    }
    const gatewayCode = typeof response === 'object' && response !== null ? (response as { code?: unknown }).code : undefined;
    if (status === HttpStatus.UNAUTHORIZED || status === HttpStatus.FORBIDDEN) {
      return new OpenAiError(status, messages.join('; '), 'invalid_request_error', null, 'invalid_api_key');
    }
    if (status === HttpStatus.TOO_MANY_REQUESTS) {
      return new OpenAiError(status, messages.join('; '), 'requests', null, 'rate_limit_exceeded');
    }
    // A 400 from outside the DTOs is a body the server could not parse (malformed JSON, a broken multipart).
    const fallback = status === HttpStatus.BAD_REQUEST ? 'invalid_value' : (HttpStatus[status] ?? 'http_error').toString().toLowerCase();
    const code = typeof gatewayCode === 'string' ? gatewayCode.toLowerCase() : fallback;
    return new OpenAiError(status, messages.join('; '), undefined, null, code);
  }
}

/** The request field a validation message is about: the DTO field it starts with, longest first. */
function paramOf(message: string): string | null {
  return [...TRANSCRIPTION_FIELDS].sort((a, b) => b.length - a.length).find((f) => message === f || message.startsWith(`${f} `)) ?? null;
}
