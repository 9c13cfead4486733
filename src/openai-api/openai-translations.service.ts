import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import type { SubmitJobDto } from '../jobs/dto/submit-job.dto.js';
import { SubmissionService, type UploadedAudio } from '../jobs/submission.service.js';
import type { ResponseFormat } from './dto/transcription-request.dto.js';
import type { TranslationRequestDto } from './dto/translation-request.dto.js';
import { OpenAiApiService, WHISPER_1 } from './openai-api.service.js';
import { OpenAiError } from './openai-error.js';

/** A validated translation request: where it goes and how to answer it. */
export interface TranslationPlan {
  /** Engine id (canonical); one with `capabilities.translation`. */
  engine: string;
  /** Engine model from `engine:model`, or undefined for the engine's default. */
  model?: string;
  format: ResponseFormat;
  /** Request fields accepted but not honoured, in plain words (sent as `x-transcription-warnings`). */
  warnings: string[];
}

/**
 * `POST /v1/audio/translations`: speech in any language to English text, as a gateway job with
 * `task=translate` (same queue, engines, chunking and `transcript_jobs` row as the job API). The
 * model names and the wait for the job are the transcription route's (OpenAiApiService).
 */
@Injectable()
export class OpenAiTranslationsService {
  constructor(
    private readonly config: AppConfig,
    private readonly registry: EngineRegistry,
    private readonly api: OpenAiApiService,
    private readonly submissions: SubmissionService,
  ) {}

  /** Model ids of the enabled engines that can translate (their ids), for error messages. */
  private translatingEngines(): string[] {
    return this.registry.all().filter((e) => e.capabilities.translation).map((e) => e.id);
  }

  /**
   * Resolves the model to an engine that can translate. `whisper-1` is the default engine when it
   * can translate, else the first enabled engine that can (the default engine is often
   * pocketsphinx, which cannot); other names resolve as for transcriptions.
   *
   * @throws OpenAiError 404 model_not_found (unknown model); 400 invalid_value, param `model`, for
   *   an engine that cannot translate, naming the models that can
   */
  plan(dto: TranslationRequestDto): TranslationPlan {
    const capable = this.translatingEngines();
    const name = dto.model.trim();
    const defaultEngine = this.registry.has(this.config.DEFAULT_TRANSCRIPTION_ENGINE) ? this.registry.get(this.config.DEFAULT_TRANSCRIPTION_ENGINE) : null;
    const resolved = name === WHISPER_1 && !defaultEngine?.capabilities.translation && capable.length > 0 ? { engine: capable[0] } : this.api.resolveModel(name);
    if (!this.registry.get(resolved.engine).capabilities.translation) {
      throw new OpenAiError(
        400,
        `The model '${name}' cannot translate (engine ${resolved.engine}). Models that can: ${capable.join(', ') || '(none enabled)'}.`,
        'invalid_request_error',
        'model',
        'invalid_value',
      );
    }
    const warnings: string[] = [];
    if (dto.temperature !== undefined) warnings.push('temperature is ignored: engines decode with their own settings');
    return { engine: resolved.engine, ...(resolved.model ? { model: resolved.model } : {}), format: dto.response_format ?? 'json', warnings };
  }

  /**
   * Submits the upload as a gateway job with `task=translate` (validated with ffprobe, stored,
   * queued; the temp upload is always removed).
   *
   * @param keyLabel label of the calling API key (per-key metrics)
   * @returns the job id
   * @throws OpenAiError 400 missing_required_parameter without a file; AudioError (empty,
   *   unreadable, no audio stream, truncated); EngineOptionError (the engine cannot translate)
   */
  async submit(file: UploadedAudio | undefined, dto: TranslationRequestDto, plan: TranslationPlan, keyLabel?: string): Promise<string> {
    if (!file) {
      throw new OpenAiError(400, "you must provide a file: send the audio (or video) as the multipart file part 'file'", 'invalid_request_error', 'file', 'missing_required_parameter');
    }
    const submission: SubmitJobDto = {
      engine: plan.engine,
      task: 'translate',
      ...(plan.model ? { model: plan.model } : {}),
      ...(dto.prompt ? { prompt: dto.prompt } : {}),
      ...(dto.vad_filter !== undefined ? { vad_filter: dto.vad_filter } : {}),
    };
    const submitted = await this.submissions.submit(file, submission, undefined, keyLabel);
    return submitted.job_id;
  }
}
