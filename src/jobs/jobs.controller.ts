import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Headers,
  HttpStatus,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Res,
  Sse,
  StreamableFile,
  UploadedFile,
  UseInterceptors,
  type MessageEvent,
} from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import { ApiAcceptedResponse, ApiBadRequestResponse, ApiBody, ApiConflictResponse, ApiConsumes, ApiExtraModels, ApiGoneResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiPayloadTooLargeResponse, ApiProduces, ApiQuery, ApiTags, ApiUnprocessableEntityResponse, ApiUnsupportedMediaTypeResponse } from '@nestjs/swagger';
import { ApiKeyLabel } from '../auth/api-key.guard.js';
import { SubmitRateLimit } from '../auth/throttle.js';
import { ApiErrorSchema, EngineSchema, JobResultSchema, JobStatusSchema, SubmitJobForm, SubmitJobResponseSchema } from './dto/openapi.js';
import type { Response } from 'express';
import type { Observable } from 'rxjs';
import { EXPORT_CONTENT_TYPES, exportContentDisposition, pickFormat, toSrt, toText, toVtt } from '../transcripts/exports.js';
import type { JobResultView, JobStatusView } from './dto/job-views.js';
import { SubmitJobDto, type SubmitJobResponse } from './dto/submit-job.dto.js';
import { JobStreamService } from './job-stream.service.js';
import { JobQueryService } from './job-query.service.js';
import { SubmissionService, type UploadedAudio } from './submission.service.js';
import { JobControl } from '../transcription/job-control.js';
import { JobError } from './jobs.errors.js';
import { contentDisposition } from '../common/content-disposition.js';
import { rm } from 'node:fs/promises';
import { IdempotencyService } from '../idempotency/idempotency.service.js';
import { hashUpload, idempotencyRequestHash, parseIdempotencyKey } from '../idempotency/request-hash.js';

/** `job_id` path parameter: a UUID (400 otherwise). */
const JobId = () => Param('job_id', new ParseUUIDPipe({ exceptionFactory: () => new BadRequestException('job_id must be a UUID (as returned by POST /api/transcribe/jobs/transcribe)') }));

/**
 * The job API under `/api/transcribe/jobs` (seed 002 shapes). Thin: validation by DTOs and pipes,
 * work in JobsService, domain errors mapped by ApiErrorFilter. All times are float seconds.
 */
@ApiTags('jobs')
@ApiExtraModels(EngineSchema)
@ApiBadRequestResponse({ type: ApiErrorSchema, description: 'malformed request: the message says what was wrong and what is accepted' })
@Controller('api/transcribe/jobs')
export class JobsController {
  constructor(
    private readonly submissions: SubmissionService,
    private readonly queries: JobQueryService,
    private readonly control: JobControl,
    private readonly idempotency: IdempotencyService,
    private readonly streams: JobStreamService,
  ) {}

  /**
   * Submit audio or video (multipart: `file`, optional `session_id`, `engine`, `context_id`, `language`).
   * 202 `{job_id, transcript_id, engine, status: "queued", message}`.
   * Errors: 400 no file / bad field / unknown engine (lists engines); 413 over MAX_FILE_SIZE;
   * 415 not audio or no audio stream; 422 truncated or undecodable.
   */
  @ApiOperation({ summary: 'Submit audio or video for transcription', description: 'Multipart upload; the job is queued and processed by a worker. Watch it with GET /stream/{job_id}.' })
  @ApiConsumes('multipart/form-data')
  @ApiBody({ type: SubmitJobForm })
  @ApiAcceptedResponse({ type: SubmitJobResponseSchema })
  @ApiNotFoundResponse({ type: ApiErrorSchema, description: 'unknown context_id' })
  @ApiPayloadTooLargeResponse({ type: ApiErrorSchema, description: 'file over MAX_FILE_SIZE' })
  @ApiUnsupportedMediaTypeResponse({ type: ApiErrorSchema, description: 'not audio/video, or no audio stream' })
  @ApiUnprocessableEntityResponse({ type: ApiErrorSchema, description: 'truncated or undecodable media' })
  @Post('transcribe')
  @HttpCode(HttpStatus.ACCEPTED)
  @SubmitRateLimit()
  @UseInterceptors(FileInterceptor('file'))
  submit(
    @UploadedFile() file: UploadedAudio | undefined,
    @Body() dto: SubmitJobDto,
    @ApiKeyLabel() keyLabel: string,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<SubmitJobResponse> {
    return this.submitOnce({ route: 'transcribe', file, dto, idempotencyKey, keyLabel, res }, () => this.submissions.submit(file, dto, undefined, keyLabel));
  }

  /** Same as `POST /transcribe` with the engine fixed by the path (`asr` = `riva`). */
  @ApiOperation({ summary: 'Submit to one engine (asr = riva)', description: 'Multipart upload; the job is queued and processed by a worker. Watch it with GET /stream/{job_id}.' })
  @ApiConsumes('multipart/form-data')
  @ApiBody({ type: SubmitJobForm })
  @ApiAcceptedResponse({ type: SubmitJobResponseSchema })
  @ApiNotFoundResponse({ type: ApiErrorSchema, description: 'unknown context_id' })
  @ApiPayloadTooLargeResponse({ type: ApiErrorSchema, description: 'file over MAX_FILE_SIZE' })
  @ApiUnsupportedMediaTypeResponse({ type: ApiErrorSchema, description: 'not audio/video, or no audio stream' })
  @ApiUnprocessableEntityResponse({ type: ApiErrorSchema, description: 'truncated or undecodable media' })
  @ApiParam({ name: 'engine', example: 'whisperx' })
  @Post('transcribe/:engine')
  @HttpCode(HttpStatus.ACCEPTED)
  @SubmitRateLimit()
  @UseInterceptors(FileInterceptor('file'))
  submitToEngine(
    @Param('engine') engine: string,
    @UploadedFile() file: UploadedAudio | undefined,
    @Body() dto: SubmitJobDto,
    @ApiKeyLabel() keyLabel: string,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<SubmitJobResponse> {
    return this.submitOnce({ route: `transcribe/${engine}`, file, dto, idempotencyKey, keyLabel, res }, () => this.submissions.submit(file, dto, engine, keyLabel));
  }

  /**
   * Runs a submission once per `Idempotency-Key` (docs/webhooks.md): without the header, `submit`
   * runs as is; with it, the same key and request within IDEMPOTENCY_TTL_HOURS return the first
   * 202 body again (header `Idempotent-Replayed: true`). Keys are scoped by the caller's API key label.
   * @throws IdempotencyError 400 IDEMPOTENCY_KEY_INVALID, 409 IDEMPOTENCY_KEY_REUSED / IDEMPOTENCY_IN_PROGRESS
   */
  private async submitOnce(
    request: { route: string; file: UploadedAudio | undefined; dto: SubmitJobDto; idempotencyKey: string | undefined; keyLabel: string; res: Response },
    submit: () => Promise<SubmitJobResponse>,
  ): Promise<SubmitJobResponse> {
    const { file } = request;
    // submit() removes the upload itself; a replay, a conflict or a bad key never reach it.
    let submitted = false;
    const submitOnceHere = () => {
      submitted = true;
      return submit();
    };
    try {
      const key = parseIdempotencyKey(request.idempotencyKey);
      if (key === null) return await submitOnceHere();
      const requestHash = idempotencyRequestHash({
        route: request.route,
        fields: request.dto,
        file: file ? { sha256: await hashUpload(file.path), name: file.originalname } : null,
      });
      const { response, replayed } = await this.idempotency.execute(request.keyLabel, key, requestHash, submitOnceHere);
      if (replayed) request.res.setHeader('Idempotent-Replayed', 'true');
      return response;
    } finally {
      if (file && !submitted) await rm(file.path, { force: true });
    }
  }

  /**
   * Cancel or delete a job. Queued/processing → 202 `{job_id, status: "cancelled"}` (the job ends
   * `failed` with error code JOB_CANCELLED; its chunk jobs and running engine calls are stopped).
   * Completed/failed → 200 `{job_id, status: "deleted"}`: transcript, job row and audio removed;
   * later status/result/stream/audio requests for it answer 410 JOB_DELETED. 404 unknown id.
   */
  @ApiOperation({ summary: 'Cancel a queued/running job, or delete a finished one' })
  @ApiParam({ name: 'job_id', format: 'uuid' })
  @ApiAcceptedResponse({ description: 'cancelled: `{job_id, status: "cancelled"}`' })
  @ApiOkResponse({ description: 'deleted: `{job_id, status: "deleted"}`' })
  @ApiNotFoundResponse({ type: ApiErrorSchema })
  @Delete(':job_id')
  async remove(@JobId() jobId: string, @Res({ passthrough: true }) res: Response): Promise<{ job_id: string; status: 'cancelled' | 'deleted' }> {
    const outcome = await this.control.remove(jobId);
    if (outcome === 'not-found') throw new JobError('JOB_NOT_FOUND', `no job with id ${jobId}`);
    if (outcome === 'deleted') await this.queries.recordDeletion(jobId);
    res.status(outcome === 'cancelled' ? HttpStatus.ACCEPTED : HttpStatus.OK);
    return { job_id: jobId, status: outcome };
  }

  /** Job status: `{job_id, status, progress 0–100, stage, transcript_id, engine, worker_id, message, result?, error?}`. 404 unknown id. */
  @ApiOperation({ summary: 'Job status (Redis while BullMQ holds the job, Postgres afterwards)' })
  @ApiParam({ name: 'job_id', format: 'uuid' })
  @ApiOkResponse({ type: JobStatusSchema })
  @ApiNotFoundResponse({ type: ApiErrorSchema })
  @Get('status/:job_id')
  status(@JobId() jobId: string): Promise<JobStatusView> {
    return this.queries.status(jobId);
  }

  /**
   * Server-Sent Events: one `data:` JSON event per state change (same shape as `status`), the
   * current state first and at once; the stream ends after `completed` or `failed`. 404 unknown id.
   */
  @ApiOperation({ summary: 'Server-Sent Events: the current state at once, then every change (same shape as status); ends after completed/failed' })
  @ApiParam({ name: 'job_id', format: 'uuid' })
  @ApiProduces('text/event-stream')
  @ApiOkResponse({ type: JobStatusSchema, description: 'each `data:` line is one JobStatus JSON' })
  @ApiNotFoundResponse({ type: ApiErrorSchema })
  @Sse('stream/:job_id')
  async stream(@JobId() jobId: string): Promise<Observable<MessageEvent>> {
    const initial = await this.queries.status(jobId);
    return this.streams.stream(jobId, initial);
  }

  /**
   * The normalized transcript (JSON, the default) or an export of it, chosen by `?format=json|txt|srt|vtt`
   * or else by `Accept` (`text/plain`, `application/x-subrip` or `text/srt`, `text/vtt`). Exports are
   * downloads (`Content-Disposition: attachment; filename="<upload name>.<ext>"`), UTF-8; SRT/VTT cues
   * are built from word times (≤ ~7 s, ≤ 2 lines of 42 characters, a new cue per speaker) and carry
   * speaker labels (roles from `speaker_roles`). Times in the JSON are float seconds.
   * Errors: 400 UNSUPPORTED_FORMAT (lists the accepted formats); 404 unknown id; 409 `{status}` while not completed.
   */
  @ApiOperation({ summary: 'The normalized transcript, or an export (txt, srt, vtt)' })
  @ApiParam({ name: 'job_id', format: 'uuid' })
  @ApiQuery({ name: 'format', required: false, enum: ['json', 'txt', 'srt', 'vtt'] })
  @ApiProduces('application/json', 'text/plain', 'application/x-subrip', 'text/vtt')
  @ApiOkResponse({ type: JobResultSchema })
  @ApiNotFoundResponse({ type: ApiErrorSchema })
  @ApiConflictResponse({ type: ApiErrorSchema, description: 'not completed yet (or failed): body carries `status`' })
  @Get('result/:job_id')
  async result(
    @JobId() jobId: string,
    @Query('format') format: string | string[] | undefined,
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<JobResultView | string> {
    // Checked before the lookup so that a bad format is a 400 whatever the job's state.
    const chosen = pickFormat(format === undefined ? undefined : String(format), accept);
    const view = await this.queries.result(jobId, `/api/transcribe/jobs/audio/${jobId}`);
    res.setHeader('Vary', 'Accept');
    if (chosen === 'json') return view;
    res.setHeader('Content-Type', EXPORT_CONTENT_TYPES[chosen]);
    res.setHeader('Content-Disposition', exportContentDisposition(view.filename, chosen));
    return chosen === 'txt' ? toText(view) : chosen === 'srt' ? toSrt(view) : toVtt(view);
  }

  /**
   * The original upload (used as `audio_url` by the local storage driver), served with the type the
   * gateway detected (`audio/*`, `video/*`, else `application/octet-stream`; never the uploader's
   * declaration), `X-Content-Type-Options: nosniff`, and `Content-Disposition: inline` for audio,
   * `attachment` for anything else. 404 unknown id; 410 JOB_DELETED (the job was deleted) or AUDIO_GONE (retention deleted the audio).
   */
  @ApiOperation({ summary: 'The original upload' })
  @ApiParam({ name: 'job_id', format: 'uuid' })
  @ApiOkResponse({ description: 'the uploaded bytes, typed by what the gateway detected (audio/*, video/* or application/octet-stream); attachment unless audio' })
  @ApiNotFoundResponse({ type: ApiErrorSchema })
  @ApiGoneResponse({ type: ApiErrorSchema, description: 'JOB_DELETED: the job was deleted (DELETE); AUDIO_GONE: the audio was deleted by retention' })
  @Get('audio/:job_id')
  async audio(@JobId() jobId: string, @Headers('range') range: string | undefined, @Res({ passthrough: true }) res: Response): Promise<StreamableFile> {
    const { stream, mimeType, filename, size, partial } = await this.queries.audioFile(jobId, range);
    res.setHeader('Content-Type', mimeType);
    // Stored bytes are the uploader's: browsers must neither sniff them into HTML nor render non-audio inline.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Byte ranges let browsers seek in long recordings without downloading them whole.
    res.setHeader('Accept-Ranges', 'bytes');
    if (partial) {
      res.status(HttpStatus.PARTIAL_CONTENT);
      res.setHeader('Content-Range', `bytes ${partial.start}-${partial.end}/${size}`);
      res.setHeader('Content-Length', String(partial.end - partial.start + 1));
    } else {
      res.setHeader('Content-Length', String(size));
    }
    return new StreamableFile(stream, { disposition: contentDisposition(filename, { type: mimeType.startsWith('audio/') ? 'inline' : 'attachment' }) });
  }
}
