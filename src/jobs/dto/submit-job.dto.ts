import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { ENGINE_TASKS, type EngineTask } from '../../engines/engine.spec.js';
import { SPEAKER_ROLE_STRATEGIES, type SpeakerRoleStrategy } from '../../transcripts/speaker-roles.js';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, IsUUID, Matches, Max, MaxLength, Min } from 'class-validator';
import { NoNulCharacters } from './text-validators.js';

/** Multipart values arrive as strings: 'true'/'false' (also 1/0, yes/no) become booleans; anything else stays and fails validation. */
const toBoolean = ({ value }: { value: unknown }) => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
};
const toInt = ({ value }: { value: unknown }) => (typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value);


/**
 * Multipart form fields of `POST /api/transcribe/jobs/transcribe[/:engine]` (besides `file`).
 * Options an engine cannot honour are not errors: they come back as `warnings` in the result.
 */
export class SubmitJobDto {
  /** Groups transcripts of one conversation or session (UUID). */
  @ApiPropertyOptional({ description: 'Groups transcripts of one conversation or session (UUID).', format: 'uuid' })
  @IsOptional()
  @IsUUID('all', { message: 'session_id must be a UUID' })
  session_id?: string;

  /** Engine id (`pocketsphinx`, `whisper-rocm`, `whisperx`, `riva`; `asr` = `riva`). Default: DEFAULT_TRANSCRIPTION_ENGINE. Ignored when the path names the engine. */
  @ApiPropertyOptional({ description: 'Engine id (pocketsphinx, whisper-rocm, whisperx, riva; asr = riva). Default: DEFAULT_TRANSCRIPTION_ENGINE. Ignored when the path names the engine.', example: 'pocketsphinx' })
  @IsOptional()
  @IsString()
  @NoNulCharacters()
  @MaxLength(64)
  engine?: string;

  /** Word-boosting context (UUID of a stored context). */
  @ApiPropertyOptional({ description: 'Word-boosting context (UUID of a stored context).', format: 'uuid' })
  @IsOptional()
  @IsUUID('all', { message: 'context_id must be a UUID' })
  context_id?: string;

  /** Spoken language: ISO-639-1 (`en`) or BCP-47 (`en-US`). Absent = engine default or auto-detection. */
  @ApiPropertyOptional({ description: 'Spoken language: ISO-639-1 (en) or BCP-47 (en-US). Absent = engine default or auto-detection.', example: 'en' })
  @IsOptional()
  @Matches(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/, { message: "language must be a language code such as 'en' or 'en-US'" })
  language?: string;

  /**
   * `transcribe` (default): text in the spoken language. `translate`: English text from speech in
   * any language (Whisper's translate task); only engines with `translation: true` in /engines
   * (whisper-rocm, whisperx, openai), others answer 400 naming those that can. `language`, when
   * given, is the language of the speech.
   */
  @ApiPropertyOptional({ description: 'transcribe (default): text in the spoken language. translate: English text from speech in any language; only engines with translation: true in /engines (400 otherwise). language, when given, is the language of the speech.', enum: ENGINE_TASKS, default: 'transcribe' })
  @IsOptional()
  @IsIn(ENGINE_TASKS, { message: `task must be one of: ${ENGINE_TASKS.join(', ')}` })
  task?: EngineTask;

  /** Engine model (e.g. WhisperX `large-v3`); must be one of the engine's models (see /engines). */
  @ApiPropertyOptional({ description: 'Engine model (e.g. WhisperX large-v3); must be one of the engine\'s models (see /engines).' })
  @IsOptional()
  @IsString()
  @NoNulCharacters()
  @MaxLength(100)
  model?: string;

  /** Speaker diarization. Default: on for engines that can diarize, off otherwise. */
  @ApiPropertyOptional({ description: 'Speaker diarization. Default: on for engines that can diarize, off otherwise.', type: Boolean })
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean({ message: 'enable_diarization must be true or false' })
  enable_diarization?: boolean;

  /** Fewest speakers to look for (1–20). */
  @ApiPropertyOptional({ description: 'Fewest speakers to look for (1–20).', minimum: 1, maximum: 20 })
  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'min_speakers must be an integer between 1 and 20' })
  @Min(1, { message: 'min_speakers must be an integer between 1 and 20' })
  @Max(20, { message: 'min_speakers must be an integer between 1 and 20' })
  min_speakers?: number;

  /** Most speakers to look for (1–20, ≥ min_speakers). */
  @ApiPropertyOptional({ description: 'Most speakers to look for (1–20, ≥ min_speakers).', minimum: 1, maximum: 20 })
  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'max_speakers must be an integer between 1 and 20' })
  @Min(1, { message: 'max_speakers must be an integer between 1 and 20' })
  @Max(20, { message: 'max_speakers must be an integer between 1 and 20' })
  max_speakers?: number;

  /** Transcribe each channel on its own; words get speaker_tag = channel index (call-centre recordings). */
  @ApiPropertyOptional({ description: 'Transcribe each channel on its own; words get speaker_tag = channel index (call-centre recordings).', type: Boolean })
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean({ message: 'multichannel must be true or false' })
  multichannel?: boolean;

  /**
   * `vad_filter` (the name faster-whisper and speaches use; default true): send the engine speech
   * only — Silero VAD regions packed into chunks, silence and noise between them left out. false:
   * the whole recording, cut at pauses when long (the hallucination guard still drops words found
   * in long non-speech).
   */
  @ApiPropertyOptional({ description: 'Send the engine speech only (Silero VAD); default true. false: the whole recording, cut at pauses when long.', type: Boolean, default: true })
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean({ message: 'vad_filter must be true or false' })
  vad_filter?: boolean;

  /** Speaker-roles step: `none` (default), `first_speaker` or `keywords`. */
  @ApiPropertyOptional({ description: 'Speaker-roles step: none (default), first_speaker or keywords.', enum: SPEAKER_ROLE_STRATEGIES })
  @IsOptional()
  @IsIn(SPEAKER_ROLE_STRATEGIES, { message: `speaker_roles must be one of: ${SPEAKER_ROLE_STRATEGIES.join(', ')}` })
  speaker_roles?: SpeakerRoleStrategy;

  /** Role names for the speaker-roles step, comma-separated, in order (default `provider,patient`). */
  @ApiPropertyOptional({ description: 'Role names for the speaker-roles step, comma-separated, in order (default provider,patient).' })
  @IsOptional()
  @Matches(/^[\w -]{1,40}(,[\w -]{1,40}){0,9}$/, { message: 'speaker_role_names must be up to 10 comma-separated names of letters, digits, spaces, _ or -' })
  speaker_role_names?: string;

  /** Keywords per role for `speaker_roles=keywords`, as JSON: `{"provider": ["prescribe", "diagnosis"], "patient": ["pain"]}`. */
  @ApiPropertyOptional({ description: 'Keywords per role for speaker_roles=keywords, as JSON: {"provider": ["prescribe", "diagnosis"], "patient": ["pain"]}.' })
  @IsOptional()
  @IsString()
  @NoNulCharacters()
  @MaxLength(20_000)
  speaker_role_keywords?: string;

  /** http(s) URL of the audio to fetch instead of uploading `file` (exactly one of the two); see docs/security.md. Never logged. */
  @ApiPropertyOptional({ description: 'http(s) URL of the audio to fetch instead of uploading file (exactly one of the two)', example: 'https://example.com/call.mp3' })
  @IsOptional()
  @IsString()
  @NoNulCharacters()
  @MaxLength(2048, { message: 'audio_url must be at most 2048 characters' })
  audio_url?: string;

  /** Text that biases recognition (Whisper prompt / initial_prompt), up to 1000 characters. */
  @ApiPropertyOptional({ description: 'Text that biases recognition (Whisper prompt / initial_prompt), up to 1000 characters.' })
  @IsOptional()
  @IsString()
  @NoNulCharacters()
  @MaxLength(1000)
  prompt?: string;

  /**
   * URL that receives a signed POST once the job completes or fails (docs/webhooks.md): absolute
   * http(s), at most 2048 characters; needs WEBHOOK_SECRET on the gateway. Private hosts only with
   * ALLOW_PRIVATE_URLS=true.
   */
  @ApiPropertyOptional({ description: 'URL that receives a signed POST (X-Webhook-Signature) when the job completes or fails; http(s), at most 2048 characters. See docs/webhooks.md.', format: 'uri', maxLength: 2048 })
  @IsOptional()
  @IsString()
  @NoNulCharacters()
  @MaxLength(2048)
  callback_url?: string;
}

/** 202 response of a submission. */
export interface SubmitJobResponse {
  job_id: string;
  transcript_id: string;
  engine: string;
  status: 'queued';
  message: string;
}
