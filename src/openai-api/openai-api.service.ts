import { Injectable, Logger } from '@nestjs/common';
import { catchError, concatMap, defer, firstValueFrom, from, interval, last, map, merge, Observable, of, shareReplay, switchMap, takeUntil, timer } from 'rxjs';
import { AUDIO_ERROR_STATUS, type AudioErrorCode } from '../audio/audio.errors.js';
import { AppConfig } from '../config/app-config.js';
import { EngineHealthService } from '../engines/engine-health.service.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import type { TranscriptionEngine } from '../engines/engine.spec.js';
import type { JobResultView, JobStatusView } from '../jobs/dto/job-views.js';
import type { SubmitJobDto } from '../jobs/dto/submit-job.dto.js';
import { JobStreamService } from '../jobs/job-stream.service.js';
import { JobQueryService } from '../jobs/job-query.service.js';
import { SubmissionService, type UploadedAudio } from '../jobs/submission.service.js';
import type { ResponseFormat, TimestampGranularity, TranscriptionRequestDto } from './dto/transcription-request.dto.js';
import { OpenAiError } from './openai-error.js';
import { sseFrame, streamEvents } from './responses.js';

/** The model id OpenAI's SDK examples use; here an alias of DEFAULT_TRANSCRIPTION_ENGINE. */
export const WHISPER_1 = 'whisper-1';

/** Milliseconds between SSE comment lines while a streamed transcription waits (keeps proxies from closing an idle connection). */
export const STREAM_HEARTBEAT_MS = 15_000;

/** `GET /v1/models` entry, OpenAI's `Model` object. */
export interface ModelObject {
  /** `whisper-1`, an engine id, or `engine:model` with the engine's real model name. */
  id: string;
  object: 'model';
  /** Unix seconds: when this API process started (engines have no creation date). */
  created: number;
  owned_by: 'transcription-gateway';
}

/** A validated transcription request: where it goes and how to answer it. */
export interface TranscriptionPlan {
  /** Engine id (canonical). */
  engine: string;
  /** Engine model from `engine:model`, or undefined for the engine's default. */
  model?: string;
  format: ResponseFormat;
  granularities: TimestampGranularity[];
  stream: boolean;
  /** Request fields accepted but not honoured, in plain words (sent as `x-transcription-warnings`). */
  warnings: string[];
}

/** One engine's entries in the model list: its id, and `engine:model` per real model name. */
interface EngineModels {
  engine: TranscriptionEngine;
  /** Real model names a request may name after `engine:`, each with the model to submit (undefined = the engine's default). */
  names: Map<string, string | undefined>;
}

/** How waiting for a job ended. */
export type TranscriptionOutcome =
  | { kind: 'completed'; result: JobResultView }
  /** The job failed after the gateway's own retries, or was cancelled; `status.error` holds the last error (code, message, retryable…). */
  | { kind: 'failed'; status: JobStatusView }
  /** OPENAI_API_WAIT_TIMEOUT_MS passed first; the job goes on. */
  | { kind: 'timeout' }
  /** The client disconnected first; the job goes on. */
  | { kind: 'gone' };

/**
 * The OpenAI-compatible front of the gateway: resolves OpenAI model ids to engines, submits
 * through JobsService (the same validation, storage, queue and engines as
 * `POST /api/transcribe/jobs/transcribe`) and waits for the job through JobEventsService's
 * status stream, so a synchronous OpenAI request becomes one ordinary gateway job.
 */
@Injectable()
export class OpenAiApiService {
  private readonly logger = new Logger(OpenAiApiService.name);
  /** Unix seconds of this process's start, the `created` of every model. */
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(
    private readonly config: AppConfig,
    private readonly registry: EngineRegistry,
    private readonly submissions: SubmissionService,
    private readonly queries: JobQueryService,
    private readonly streams: JobStreamService,
    private readonly health: EngineHealthService,
  ) {}

  /**
   * The model names of one engine. An engine configured with the model `whisper-1` (an
   * OpenAI-compatible server such as engines/whisper-rocm, which takes `whisper-1` for whatever
   * model it loaded) is listed under the model its health probe reports (`whisper-rocm:large-v3`),
   * or under its id alone until a probe has told; `engine:whisper-1` stays accepted as an alias.
   * The OpenAI cloud, whose model really is `whisper-1`, reports no other name and keeps it.
   */
  private engineModels(engine: TranscriptionEngine): EngineModels {
    const names = new Map<string, string | undefined>();
    for (const model of engine.capabilities.models) names.set(model, model);
    if (engine.capabilities.models.includes(WHISPER_1)) {
      const reported = this.health.state(engine.id).details?.model;
      names.delete(WHISPER_1);
      if (typeof reported === 'string' && reported && reported !== WHISPER_1) names.set(reported, undefined);
    }
    return { engine, names };
  }

  /**
   * Every model id `GET /v1/models` lists: `whisper-1` (the default engine, when enabled), then
   * per engine its id followed by one `engine:model` per real model name it offers.
   */
  models(): ModelObject[] {
    const ids: string[] = [];
    if (this.registry.has(this.config.DEFAULT_TRANSCRIPTION_ENGINE)) ids.push(WHISPER_1);
    for (const engine of this.registry.all()) {
      ids.push(engine.id, ...[...this.engineModels(engine).names.keys()].map((m) => `${engine.id}:${m}`));
    }
    return [...new Set(ids)].map((id) => this.modelObject(id));
  }

  private modelObject(id: string): ModelObject {
    return { id, object: 'model', created: this.created, owned_by: 'transcription-gateway' };
  }

  /** @throws OpenAiError 404 model_not_found */
  model(id: string): ModelObject {
    this.resolveModel(id);
    return this.modelObject(id.trim());
  }

  /**
   * `whisper-1` → DEFAULT_TRANSCRIPTION_ENGINE; an engine id or alias (`asr`) → that engine with
   * its default model; `engine:model` → that engine and model, which must be one it lists (or,
   * for a server that takes `whisper-1` for its loaded model, that model's name or `whisper-1`).
   *
   * @throws OpenAiError 404 model_not_found (param `model`), listing the model ids that exist
   */
  resolveModel(name: string): { engine: string; model?: string } {
    const id = name.trim();
    if (id === WHISPER_1 && this.registry.has(this.config.DEFAULT_TRANSCRIPTION_ENGINE)) {
      return { engine: this.registry.get(this.config.DEFAULT_TRANSCRIPTION_ENGINE).id };
    }
    const colon = id.indexOf(':');
    if (colon > 0) {
      const [engineName, model] = [id.slice(0, colon), id.slice(colon + 1)];
      if (this.registry.has(engineName)) {
        const engine = this.registry.get(engineName);
        const { names } = this.engineModels(engine);
        if (names.has(model)) {
          const submitted = names.get(model);
          return { engine: engine.id, ...(submitted ? { model: submitted } : {}) };
        }
        if (model === WHISPER_1 && engine.capabilities.models.includes(WHISPER_1)) return { engine: engine.id, model: WHISPER_1 };
      }
    } else if (this.registry.has(id)) {
      return { engine: this.registry.get(id).id };
    }
    const available = this.models().map((m) => m.id);
    throw new OpenAiError(404, `The model '${id}' does not exist. Available models: ${available.join(', ') || '(none)'}.`, 'invalid_request_error', 'model', 'model_not_found');
  }

  /**
   * Checks the request as a whole (fields one by one were checked by the DTO) and resolves its
   * model. As OpenAI does: `timestamp_granularities` `word` needs verbose_json while `segment`
   * alone is accepted with any format (only verbose_json carries timestamps: reported as a
   * warning); `stream=true` with `whisper-1` is ignored (OpenAI does not stream whisper-1) and
   * the answer is the plain response.
   *
   * @throws OpenAiError 400 missing_required_parameter without a model (listing the model ids);
   *   404 model_not_found; 400 invalid_value for `word` granularity without verbose_json, or
   *   stream=true (other models than whisper-1) with a format other than json or text
   */
  plan(dto: TranscriptionRequestDto): TranscriptionPlan {
    const format = dto.response_format ?? 'json';
    const granularities = [...new Set(dto.timestamp_granularities ?? [])];
    const modelName = dto.model?.trim() ?? '';
    if (!modelName) {
      throw new OpenAiError(400, `model is required; accepted: ${this.models().map((m) => m.id).join(', ') || '(no engine is enabled)'} (see GET /v1/models)`, 'invalid_request_error', 'model', 'missing_required_parameter');
    }
    const warnings: string[] = [];
    const whisper1 = modelName === WHISPER_1;
    if (dto.stream && whisper1) warnings.push('stream is ignored for whisper-1 (as OpenAI does); name an engine id such as pocketsphinx to stream');
    const stream = (dto.stream ?? false) && !whisper1;
    if (granularities.includes('word') && format !== 'verbose_json') {
      throw new OpenAiError(400, `timestamp_granularities word needs response_format=verbose_json (got ${format}); segment alone is accepted with any format`, 'invalid_request_error', 'timestamp_granularities', 'invalid_value');
    }
    if (granularities.length > 0 && format !== 'verbose_json') warnings.push(`timestamp_granularities is used only with response_format=verbose_json; ${format} was answered as usual`);
    if (stream && format !== 'json' && format !== 'text') {
      throw new OpenAiError(400, `stream=true answers transcript.text.delta/done events and works with response_format json or text, not ${format}`, 'invalid_request_error', 'stream', 'invalid_value');
    }
    const { engine, model } = this.resolveModel(modelName);
    if (dto.temperature !== undefined) warnings.push('temperature is ignored: engines decode with their own settings');
    if (dto.include?.length) warnings.push(`include[] (${dto.include.join(', ')}) is ignored: engines return no token log probabilities`);
    if (dto.chunking_strategy !== undefined) warnings.push('chunking_strategy is ignored: the gateway cuts long audio at pauses by its own settings');
    return { engine, ...(model ? { model } : {}), format, granularities, stream, warnings };
  }

  /**
   * Submits the upload as an ordinary gateway job (validated with ffprobe, stored, queued; the
   * temp upload is always removed).
   *
   * @param keyLabel label of the calling API key (per-key metrics), as the job API passes it
   * @returns the job id
   * @throws OpenAiError 400 missing_required_parameter without a file; AudioError (empty,
   *   unreadable, no audio stream, truncated); UnknownEngineError
   */
  async submit(file: UploadedAudio | undefined, dto: TranscriptionRequestDto, plan: TranscriptionPlan, keyLabel?: string): Promise<string> {
    if (!file) {
      throw new OpenAiError(400, "you must provide a file: send the audio (or video) as the multipart file part 'file'", 'invalid_request_error', 'file', 'missing_required_parameter');
    }
    const submission: SubmitJobDto = {
      engine: plan.engine,
      ...(plan.model ? { model: plan.model } : {}),
      ...(dto.language ? { language: dto.language } : {}),
      ...(dto.prompt ? { prompt: dto.prompt } : {}),
      ...(dto.vad_filter !== undefined ? { vad_filter: dto.vad_filter } : {}),
    };
    const submitted = await this.submissions.submit(file, submission, undefined, keyLabel);
    return submitted.job_id;
  }

  /**
   * Waits for a job to end, driven by the job's status stream (queue events, no polling of its
   * own), at most OPENAI_API_WAIT_TIMEOUT_MS. Emits one outcome and completes; unsubscribing
   * (a client that left) stops the wait but never the job.
   */
  outcome$(jobId: string): Observable<Exclude<TranscriptionOutcome, { kind: 'gone' }>> {
    return defer(() => from(this.queries.status(jobId))).pipe(
      switchMap((initial) => this.streams.stream(jobId, initial)),
      map((event) => event.data as JobStatusView),
      takeUntil(timer(this.config.OPENAI_API_WAIT_TIMEOUT_MS)),
      last(null, null),
      switchMap(async (status): Promise<Exclude<TranscriptionOutcome, { kind: 'gone' }>> => {
        if (status?.status === 'completed') return { kind: 'completed', result: await this.queries.result(jobId, `/api/transcribe/jobs/audio/${jobId}`) };
        if (status?.status === 'failed' || status?.status === 'cancelled') return { kind: 'failed', status };
        return { kind: 'timeout' };
      }),
    );
  }

  /**
   * Waits as {@link outcome$} does, or until `gone$` emits (the client disconnected).
   */
  wait(jobId: string, gone$: Observable<unknown>): Promise<TranscriptionOutcome> {
    return firstValueFrom(merge(this.outcome$(jobId), gone$.pipe(map((): TranscriptionOutcome => ({ kind: 'gone' })))));
  }

  /**
   * The error answer of a job that did not complete: the audio error's own 4xx status
   * (invalid_request_error, param `file`) when the worker found the audio unusable, else 500
   * server_error with the engine's code and message for a failed job; 504 for one still running
   * at the timeout. Both carry
   * `x-should-retry: false`: the gateway already retried the engine (JOB_MAX_RETRIES), and an SDK
   * retry would upload and transcribe the audio again.
   */
  outcomeError(jobId: string, outcome: Extract<TranscriptionOutcome, { kind: 'failed' | 'timeout' }>): OpenAiError {
    const headers = { 'x-should-retry': 'false' };
    if (outcome.kind === 'timeout') {
      const seconds = Math.round(this.config.OPENAI_API_WAIT_TIMEOUT_MS / 1000);
      return new OpenAiError(
        504,
        `the transcription did not finish within ${seconds} s (OPENAI_API_WAIT_TIMEOUT_MS); it continues as job ${jobId}: GET /api/transcribe/jobs/result/${jobId}`,
        'server_error', null, 'transcription_timeout', headers,
      );
    }
    const error = outcome.status.error ?? {};
    const code = typeof error.code === 'string' ? error.code.toLowerCase() : 'transcription_failed';
    const reason = typeof error.message === 'string' ? error.message : outcome.status.message;
    // Audio that only the worker's decode found unusable is the caller's problem (4xx), not a server error to retry.
    const inputStatus = typeof error.code === 'string' ? AUDIO_ERROR_STATUS[error.code as AudioErrorCode] : undefined;
    if (inputStatus) return new OpenAiError(inputStatus, `the audio cannot be transcribed (job ${jobId}): ${reason}`, 'invalid_request_error', 'file', code, headers);
    return new OpenAiError(500, `transcription failed (job ${jobId}, engine ${outcome.status.engine}): ${reason}`, 'server_error', null, code, headers);
  }

  /**
   * The Server-Sent Events of `stream=true`, as text frames: an SSE comment at once (so the
   * response starts), comments every STREAM_HEARTBEAT_MS while the job runs, then one
   * `transcript.text.delta` per segment and `transcript.text.done` — or, when the job fails or
   * times out (or its state cannot be read), one `data: {"error": …}` event, which the SDKs raise
   * as an APIError. Engines return the text when the job completes, so the deltas arrive
   * together at the end.
   */
  streamFrames(jobId: string): Observable<string> {
    const end = this.outcome$(jobId).pipe(
      // Headers are out by now: a failure to read the job's state can only be told as an event.
      catchError((err: unknown) => of({ kind: 'unreadable' as const, err })),
      shareReplay({ bufferSize: 1, refCount: true }),
    );
    return merge(
      of(`: transcription job ${jobId}\n\n`),
      end.pipe(concatMap((o) => from(this.finalFrames(jobId, o)))),
      interval(STREAM_HEARTBEAT_MS).pipe(map(() => ': keep-alive\n\n'), takeUntil(end)),
    );
  }

  private finalFrames(jobId: string, end: Exclude<TranscriptionOutcome, { kind: 'gone' }> | { kind: 'unreadable'; err: unknown }): string[] {
    if (end.kind === 'completed') return streamEvents(end.result).map(sseFrame);
    if (end.kind !== 'unreadable') return [sseFrame(this.outcomeError(jobId, end).body())];
    this.logger.error(`streamed transcription of job ${jobId}: ${end.err instanceof Error ? (end.err.stack ?? end.err.message) : String(end.err)}`);
    const error = new OpenAiError(500, `the state of job ${jobId} could not be read; fetch it later: GET /api/transcribe/jobs/status/${jobId}`, 'server_error', null, 'internal_error');
    return [sseFrame(error.body())];
  }
}
