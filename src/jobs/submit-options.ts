import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { ContextsService, toWordBoosts } from '../contexts/contexts.service.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import { checkEngineOptions, checkEngineTask } from '../engines/engine-options.js';
import type { TranscribeOptions, TranscriptionEngine } from '../engines/engine.spec.js';
import type { SpeakerRolesRequest } from '../transcripts/speaker-roles.js';
import { WebhookService } from '../webhooks/webhook.service.js';
import type { SubmitJobDto } from './dto/submit-job.dto.js';
import { JobError } from './jobs.errors.js';
import { hasNoNul } from './dto/text-validators.js';

/** A submission's fields, resolved and checked against the chosen engine. */
export interface ResolvedSubmission {
  engine: TranscriptionEngine;
  /** What the engine is asked for. */
  options: TranscribeOptions;
  speakerRoles?: SpeakerRolesRequest;
  /** Checked callback URL, or null for none. */
  callbackUrl: string | null;
  /** The request's options as recorded in `transcript_jobs.engine_params`. */
  engineParams: Record<string, unknown>;
}

/**
 * Turns the fields of a submission into what the pipeline needs, rejecting at submit time —
 * before anything is stored or queued — everything that could only fail later in a worker.
 */
@Injectable()
export class SubmitOptionsResolver {
  constructor(
    private readonly config: AppConfig,
    private readonly engines: EngineRegistry,
    private readonly contexts: ContextsService,
    private readonly webhooks: WebhookService,
  ) {}

  /**
   * @param engineFromPath engine named by the URL (`/transcribe/:engine`); wins over `dto.engine`.
   * @throws UnknownEngineError (400, lists the engines); EngineOptionError INVALID_OPTION (unknown
   *   model or language; task=translate on an engine that cannot translate, naming those that
   *   can); JobError INVALID_OPTION (
   *   min_speakers > max_speakers, malformed speaker_role_keywords, context on an engine that
   *   cannot boost); ContextNotFoundError (404); WebhookError (400: bad or private callback URL).
   */
  async resolve(dto: SubmitJobDto, engineFromPath?: string): Promise<ResolvedSubmission> {
    const engine = this.engines.get(engineFromPath ?? dto.engine ?? this.config.DEFAULT_TRANSCRIPTION_ENGINE);
    const options = this.engineOptions(engine, dto);
    const speakerRoles = this.speakerRoles(dto);
    const callbackUrl = dto.callback_url !== undefined ? await this.webhooks.checkCallbackUrl(dto.callback_url) : null;
    if (dto.context_id) options.word_boosts = await this.wordBoosts(engine, dto.context_id);
    const engineParams = {
      ...options,
      ...(dto.context_id ? { context_id: dto.context_id } : {}),
      ...(dto.multichannel ? { multichannel: true } : {}),
      ...(dto.vad_filter === false ? { vad_filter: false } : {}),
      ...(dto.speaker_roles ? { speaker_roles: dto.speaker_roles } : {}),
    };
    return { engine, options, ...(speakerRoles ? { speakerRoles } : {}), callbackUrl, engineParams };
  }

  /**
   * Request fields → engine options, checked against what the engine offers.
   * @throws EngineOptionError INVALID_OPTION (model, language or task the engine does not offer);
   *   JobError INVALID_OPTION (min_speakers > max_speakers)
   */
  private engineOptions(engine: TranscriptionEngine, dto: SubmitJobDto): TranscribeOptions {
    // Unknown model or language for this engine: refused now, never first in a worker after a 202.
    checkEngineOptions(engine, { model: dto.model, language: dto.language });
    checkEngineTask(engine, dto.task, this.engines.all());
    if (dto.min_speakers !== undefined && dto.max_speakers !== undefined && dto.min_speakers > dto.max_speakers) {
      throw new JobError('INVALID_OPTION', `min_speakers (${dto.min_speakers}) must not exceed max_speakers (${dto.max_speakers})`);
    }
    const diarize = dto.enable_diarization ?? engine.capabilities.diarization;
    return {
      // Always explicit, so the job's engine_params, its payload and every chunk job say which task it is.
      task: dto.task ?? 'transcribe',
      ...(dto.language ? { language: dto.language } : {}),
      ...(dto.model ? { model: dto.model } : {}),
      ...(dto.prompt ? { prompt: dto.prompt } : {}),
      ...(diarize || dto.enable_diarization === false
        ? { diarization: { enabled: diarize, ...(dto.min_speakers ? { min_speakers: dto.min_speakers } : {}), ...(dto.max_speakers ? { max_speakers: dto.max_speakers } : {}) } }
        : {}),
    };
  }

  /**
   * The speaker-roles request of a submission, or undefined for `none`.
   * @throws JobError INVALID_OPTION when speaker_role_keywords is not a JSON object of string arrays
   */
  private speakerRoles(dto: SubmitJobDto): SpeakerRolesRequest | undefined {
    if (!dto.speaker_roles || dto.speaker_roles === 'none') return undefined;
    const request: SpeakerRolesRequest = { strategy: dto.speaker_roles };
    if (dto.speaker_role_names) request.roles = dto.speaker_role_names.split(',').map((r) => r.trim());
    if (dto.speaker_role_keywords) request.keywords = parseRoleKeywords(dto.speaker_role_keywords);
    return request;
  }

  /**
   * Resolves a word-boosting context for an engine that can boost.
   * @throws JobError INVALID_OPTION naming the engines that can boost; ContextNotFoundError (404)
   */
  private async wordBoosts(engine: TranscriptionEngine, contextId: string): Promise<TranscribeOptions['word_boosts']> {
    if (!engine.capabilities.word_boosting) {
      const capable = this.engines.all().filter((e) => e.capabilities.word_boosting).map((e) => e.id);
      throw new JobError(
        'INVALID_OPTION',
        `engine ${engine.id} does not support word boosting, so context_id cannot be used with it; engines that can boost: ${capable.join(', ') || '(none enabled)'}`,
        { boosting_engines: capable },
      );
    }
    return toWordBoosts(await this.contexts.get(contextId));
  }
}

/**
 * Parses `speaker_role_keywords`: a JSON object mapping each role to a list of keywords
 * (≤ 200 keywords of 1–100 characters per role, no U+0000: the request is stored in Postgres).
 * @throws JobError INVALID_OPTION with an example of the accepted shape.
 */
export function parseRoleKeywords(json: string): Record<string, string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    parsed = null;
  }
  const valid = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) &&
    Object.entries(parsed).every(([role, v]) => hasNoNul(role) && Array.isArray(v) && v.length <= 200 && v.every((k) => typeof k === 'string' && k.length > 0 && k.length <= 100 && hasNoNul(k)));
  if (!valid) {
    throw new JobError('INVALID_OPTION', 'speaker_role_keywords must be a JSON object mapping each role to a list of keywords, e.g. {"provider": ["diagnosis"], "patient": ["pain"]}');
  }
  return parsed as Record<string, string[]>;
}
