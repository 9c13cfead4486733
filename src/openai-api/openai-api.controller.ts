import { All, Body, Controller, Get, HttpCode, HttpStatus, Param, Post, Req, Res, StreamableFile, UploadedFile, UseFilters, UseInterceptors } from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import { ApiBody, ApiConsumes, ApiExcludeEndpoint, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Readable } from 'node:stream';
import { fromEvent, Observable, of, take, type Subscription } from 'rxjs';
import { ApiKeyLabel } from '../auth/api-key.guard.js';
import { SubmitRateLimit } from '../auth/throttle.js';
import type { UploadedAudio } from '../jobs/submission.service.js';
import { EXPORT_CONTENT_TYPES, toSrt, toVtt } from '../transcripts/exports.js';
import { TranscriptionRequestDto, type ResponseFormat } from './dto/transcription-request.dto.js';
import type { JobResultView } from '../jobs/dto/job-views.js';
import { OpenAiApiService, type ModelObject } from './openai-api.service.js';
import { OpenAiError } from './openai-error.js';
import { OpenAiErrorFilter } from './openai-error.filter.js';
import { toTranscriptionJson, toTranscriptionText, toVerboseJson, type TranscriptionJson, type TranscriptionVerboseJson } from './responses.js';

/** Response header naming the gateway job behind a transcription, so it can be fetched later (`GET /api/transcribe/jobs/result/:id`). */
export const JOB_ID_HEADER = 'x-transcription-job-id';
/** Response header listing request fields that were accepted but not honoured, as a JSON array of strings (ASCII). */
export const WARNINGS_HEADER = 'x-transcription-warnings';

/** A header value made of ASCII only: JSON with every non-ASCII character escaped. */
export const asciiJson = (value: unknown) => JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Emits once the client has gone: the connection closed before the response was finished. */
function clientGone(req: Request, res: Response): Observable<unknown> {
  if (req.socket.destroyed) return of(true);
  return fromEvent(res, 'close').pipe(take(1));
}

/** What `json` and `verbose_json` answer for a finished job; text, srt and vtt are the same on every route. */
export interface JsonAnswers<J, V> {
  json: (result: JobResultView) => J;
  verbose_json: (result: JobResultView) => V;
}

/**
 * Waits for job `jobId` to end, then answers its result in `format` (the route's own json and
 * verbose_json mappers; text, srt and vtt as text with their content type), with the plan's and
 * the result's warnings in WARNINGS_HEADER. Shared by `/v1/audio/transcriptions` and
 * `/v1/audio/translations`.
 * @param planWarnings the request's own warnings (fields accepted but not honoured).
 * @returns the body, or undefined when the client went away first (the job continues).
 * @throws OpenAiError when the job failed (500) or is still running after the wait (504).
 */
export async function answerWhenDone<J, V>(
  service: OpenAiApiService,
  jobId: string,
  req: Request,
  res: Response,
  plan: { format: ResponseFormat; warnings: string[] },
  answers: JsonAnswers<J, V>,
): Promise<J | V | string | undefined> {
  const outcome = await service.wait(jobId, clientGone(req, res));
  if (outcome.kind === 'gone') return undefined;
  if (outcome.kind !== 'completed') throw service.outcomeError(jobId, outcome);
  const result = outcome.result;
  if (result.warnings.length > 0) res.setHeader(WARNINGS_HEADER, asciiJson([...plan.warnings, ...result.warnings]));
  switch (plan.format) {
    case 'json':
      return answers.json(result);
    case 'verbose_json':
      return answers.verbose_json(result);
    case 'text':
      res.setHeader('Content-Type', EXPORT_CONTENT_TYPES.txt);
      return toTranscriptionText(result);
    case 'srt':
      res.setHeader('Content-Type', EXPORT_CONTENT_TYPES.srt);
      return toSrt(result);
    case 'vtt':
      res.setHeader('Content-Type', EXPORT_CONTENT_TYPES.vtt);
      return toVtt(result);
    default: {
      const unknown: never = plan.format;
      throw new Error(`unhandled response_format ${String(unknown)}`);
    }
  }
}

/** A readable stream of an Observable's strings; destroying it (Nest does when the client leaves) unsubscribes. */
function readableOf(frames: Observable<string>): Readable {
  let subscription: Subscription | undefined;
  const readable = new Readable({
    read() {
      subscription ??= frames.subscribe({
        next: (frame) => readable.push(frame),
        error: (err: Error) => readable.destroy(err),
        complete: () => readable.push(null),
      });
    },
    destroy(err, callback) {
      subscription?.unsubscribe();
      callback(err);
    },
  });
  return readable;
}

/**
 * OpenAI's speech-to-text API (`/v1`) in front of the gateway's engines, for clients built on
 * the official SDKs (`baseURL: http://<gateway>/v1`). A transcription is an ordinary gateway job
 * (same queue, engines, storage and `transcript_jobs` row) that the request waits for.
 * Errors are OpenAI's shape (OpenAiErrorFilter). Times are float seconds.
 */
@ApiTags('openai-compatible')
@Controller('v1')
@UseFilters(OpenAiErrorFilter)
export class OpenAiApiController {
  constructor(private readonly service: OpenAiApiService) {}

  /**
   * `POST /v1/audio/transcriptions` (multipart): `file`, `model`, `language`, `prompt`,
   * `response_format` (json | text | srt | vtt | verbose_json), `timestamp_granularities[]`,
   * `temperature` (ignored), `stream`.
   *
   * Answers once the job has ended: json `{text, usage}`; text/srt/vtt as text; verbose_json
   * `{task, language, duration, text, segments?, words?, usage}`. `stream=true` answers
   * `text/event-stream`: `transcript.text.delta` events (one per segment, when the job completes)
   * and `transcript.text.done`; with `whisper-1` it is ignored, as OpenAI does. Every answer after
   * submission carries `x-transcription-job-id`.
   *
   * Errors: 400 bad or unknown field / missing model or file / bad audio; 404 unknown model (`model_not_found`);
   * 413 over MAX_FILE_SIZE; 500 the job failed (the engine's code and message); 504 still running
   * after OPENAI_API_WAIT_TIMEOUT_MS (the job continues). A client that disconnects stops the
   * wait, never the job.
   */
  @ApiOperation({ summary: 'OpenAI transcription API (same queue and engines)', description: 'Fields as OpenAI: file, model (engine id, engine:model or whisper-1; see GET /v1/models), language, prompt, response_format json|text|srt|vtt|verbose_json, timestamp_granularities[] (word only with verbose_json), stream (ignored for whisper-1, as OpenAI does). Errors in OpenAI shape {error: {message, type, param, code}}. See docs/openai-api.md.' })
  @ApiConsumes('multipart/form-data')
  @ApiBody({ schema: { type: 'object', required: ['file', 'model'], properties: {
    file: { type: 'string', format: 'binary' }, model: { type: 'string', example: 'pocketsphinx' }, language: { type: 'string', example: 'en' },
    prompt: { type: 'string' }, response_format: { type: 'string', enum: ['json', 'text', 'srt', 'vtt', 'verbose_json'] },
    'timestamp_granularities[]': { type: 'array', items: { type: 'string', enum: ['segment', 'word'] } }, stream: { type: 'boolean' },
  } } })
  @Post('audio/transcriptions')
  @HttpCode(HttpStatus.OK)
  @SubmitRateLimit()
  @UseInterceptors(FileInterceptor('file'))
  async transcribe(
    @UploadedFile() file: UploadedAudio | undefined,
    @Body() dto: TranscriptionRequestDto,
    @ApiKeyLabel() keyLabel: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<TranscriptionJson | TranscriptionVerboseJson | string | StreamableFile | undefined> {
    const plan = this.service.plan(dto);
    const jobId = await this.service.submit(file, dto, plan, keyLabel);
    res.setHeader(JOB_ID_HEADER, jobId);
    if (plan.warnings.length > 0) res.setHeader(WARNINGS_HEADER, asciiJson(plan.warnings));

    if (plan.stream) {
      res.setHeader('Cache-Control', 'no-cache');
      // Reverse proxies (nginx) would otherwise hold the events back.
      res.setHeader('X-Accel-Buffering', 'no');
      return new StreamableFile(readableOf(this.service.streamFrames(jobId)), { type: 'text/event-stream; charset=utf-8' });
    }

    return answerWhenDone(this.service, jobId, req, res, plan, {
      json: toTranscriptionJson,
      verbose_json: (result) => toVerboseJson(result, plan.granularities, dto.language),
    });
  }

  /**
   * `GET /v1/models`: `{object: "list", data: [{id, object: "model", created, owned_by}]}` —
   * `whisper-1`, every engine id, every `engine:model` under the engine's real model name.
   */
  @ApiOperation({ summary: 'Engines and engine:model pairs (real model names) as OpenAI models (whisper-1 = the default engine)' })
  @Get('models')
  models(): { object: 'list'; data: ModelObject[] } {
    return { object: 'list', data: this.service.models() };
  }

  /** `GET /v1/models/:id` (`whisper-1`, an engine id, or `engine:model`). 404 `model_not_found`. */
  @ApiOperation({ summary: 'One model' })
  @Get('models/:id')
  model(@Param('id') id: string): ModelObject {
    return this.service.model(id);
  }

  // Declared after the routes they stand behind: Express tries routes in order, so these only
  // see the methods that no route above took.
  /** Any other method on `/v1/audio/transcriptions`: 405 `method_not_allowed`, `Allow: POST`. */
  @ApiExcludeEndpoint()
  @All('audio/transcriptions')
  transcriptionsMethodNotAllowed(@Req() req: Request): never {
    throw methodNotAllowed(req, 'POST');
  }

  /** Any other method on `/v1/models` and `/v1/models/:id`: 405 `method_not_allowed`, `Allow: GET, HEAD`. */
  @ApiExcludeEndpoint()
  @All(['models', 'models/:id'])
  modelsMethodNotAllowed(@Req() req: Request): never {
    throw methodNotAllowed(req, 'GET, HEAD');
  }
}

/** OpenAI-shaped 405 for a route that exists with other methods (`Allow` lists those). */
export function methodNotAllowed(req: Request, allow: string): OpenAiError {
  return new OpenAiError(405, `${req.method} is not allowed on ${req.path}; use ${allow.split(', ')[0]}`, 'invalid_request_error', null, 'method_not_allowed', { Allow: allow });
}
