import { Transform } from 'class-transformer';
import { Allow, ArrayMaxSize, IsArray, IsBoolean, IsIn, IsNumber, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { NoNulCharacters } from '../../jobs/dto/text-validators.js';

/** `response_format` values served (OpenAI's, less `diarized_json`). */
export const RESPONSE_FORMATS = ['json', 'text', 'srt', 'vtt', 'verbose_json'] as const;
export type ResponseFormat = (typeof RESPONSE_FORMATS)[number];

/** `timestamp_granularities[]` values (OpenAI's). */
export const TIMESTAMP_GRANULARITIES = ['word', 'segment'] as const;
export type TimestampGranularity = (typeof TIMESTAMP_GRANULARITIES)[number];

/** `include[]` values OpenAI defines; accepted and ignored (no engine returns token log probabilities). */
export const INCLUDE_VALUES = ['logprobs'] as const;

/** Multipart values are strings: `true`/`false` become booleans; anything else is left for @IsBoolean to reject. */
export const toBoolean = ({ value }: { value: unknown }) => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  return v === 'true' ? true : v === 'false' ? false : value;
};
/** A numeric multipart string becomes a number; anything else is left for @IsNumber to reject. */
export const toNumber = ({ value }: { value: unknown }) =>
  typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value.trim())) ? Number(value.trim()) : value;
/** `name[]=a&name[]=b` arrives as an array (multer's append-field); a single `name=a` as a string. */
const toList = ({ value }: { value: unknown }) => (typeof value === 'string' ? [value] : value);

/**
 * Multipart form fields of `POST /v1/audio/transcriptions` besides `file`, as OpenAI defines
 * them (the SDKs send exactly these names; arrays as `name[]`). Every message starts with the
 * field's name: the error filter reports it as the OpenAI error's `param`.
 */
export class TranscriptionRequestDto {
  /**
   * Required: `whisper-1` (the default engine, DEFAULT_TRANSCRIPTION_ENGINE), an engine id
   * (`pocketsphinx`, `whisperx`…), or `engine:model` (`whisperx:large-v3`). See `GET /v1/models`.
   * Optional here only so that a missing model is answered by OpenAiApiService.plan with one
   * message that lists the model ids (400 missing_required_parameter).
   */
  @IsOptional()
  @IsString({ message: 'model must be a string such as whisper-1, an engine id, or engine:model (see GET /v1/models)' })
  @MaxLength(200, { message: 'model must be at most 200 characters: whisper-1, an engine id, or engine:model (see GET /v1/models)' })
  @NoNulCharacters()
  model?: string;

  /** Spoken language, ISO-639-1 (`en`); BCP-47 (`en-US`) is accepted too. Absent = engine default or detection. */
  @IsOptional()
  @Matches(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/, { message: "language must be an ISO-639-1 code such as 'en' (or BCP-47 such as 'en-US')" })
  language?: string;

  /** Text that biases recognition (Whisper prompt / initial_prompt), up to 1000 characters; engines without prompts ignore it with a warning. */
  @IsOptional()
  @IsString({ message: 'prompt must be a string' })
  @MaxLength(1000, { message: 'prompt must be at most 1000 characters' })
  @NoNulCharacters()
  prompt?: string;

  /** `json` (default), `text`, `srt`, `vtt` or `verbose_json`. */
  @IsOptional()
  @IsIn(RESPONSE_FORMATS, { message: `response_format must be one of: ${RESPONSE_FORMATS.join(', ')}` })
  response_format?: ResponseFormat;

  /** 0..1; accepted for compatibility and ignored (engines decode with their own settings); reported in `x-transcription-warnings`. */
  @IsOptional()
  @Transform(toNumber)
  @IsNumber({}, { message: 'temperature must be a number between 0 and 1' })
  @Min(0, { message: 'temperature must be a number between 0 and 1' })
  @Max(1, { message: 'temperature must be a number between 0 and 1' })
  temperature?: number;

  /**
   * `word` and/or `segment` (multipart `timestamp_granularities[]`). `word` only with
   * `response_format=verbose_json`; `segment` alone is accepted with any format, as OpenAI does.
   * Default: segment.
   */
  @IsOptional()
  @Transform(toList)
  @IsArray({ message: 'timestamp_granularities must be a list of word and/or segment' })
  @ArrayMaxSize(2, { message: 'timestamp_granularities must be a list of word and/or segment' })
  @IsIn(TIMESTAMP_GRANULARITIES, { each: true, message: `timestamp_granularities must be a list of ${TIMESTAMP_GRANULARITIES.join(' and/or ')}` })
  timestamp_granularities?: TimestampGranularity[];

  /** `true`: answer `text/event-stream` with `transcript.text.delta` / `transcript.text.done` events (json or text format only). */
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean({ message: 'stream must be true or false' })
  stream?: boolean;

  /** OpenAI's `include[]` (`logprobs`): accepted and ignored with a warning; no engine returns token log probabilities. */
  @IsOptional()
  @Transform(toList)
  @IsArray({ message: 'include must be a list' })
  @IsIn(INCLUDE_VALUES, { each: true, message: `include must be a list of: ${INCLUDE_VALUES.join(', ')}` })
  include?: string[];

  /** The gateway's `vad_filter` (as in faster-whisper and speaches; default true): send the engine speech only. */
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean({ message: 'vad_filter must be true or false' })
  vad_filter?: boolean;

  /**
   * OpenAI's `chunking_strategy` (`auto` or a `server_vad` object): accepted and ignored with a
   * warning; the gateway finds speech with its own VAD (vad_filter, VAD_* settings).
   */
  @IsOptional()
  @Allow()
  chunking_strategy?: unknown;

  /**
   * `file` sent as a text field rather than a file part. Declared only so that it is answered
   * "file is required" (param `file`) instead of "unrecognized argument".
   */
  @IsOptional()
  @Allow()
  file?: unknown;
}

/** Field names of {@link TranscriptionRequestDto}, for telling which `param` a validation message is about. */
export const TRANSCRIPTION_FIELDS: readonly string[] = [
  'model', 'language', 'prompt', 'response_format', 'temperature', 'timestamp_granularities', 'stream', 'include', 'vad_filter', 'chunking_strategy', 'file',
];
