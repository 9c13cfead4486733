import { Transform } from 'class-transformer';
import { Allow, IsBoolean, IsIn, IsNotEmpty, IsNumber, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { NoNulCharacters } from '../../jobs/dto/text-validators.js';
import { RESPONSE_FORMATS, toBoolean, toNumber, type ResponseFormat } from './transcription-request.dto.js';

/**
 * Multipart form fields of `POST /v1/audio/translations` besides `file`, exactly OpenAI's
 * (`model`, `prompt`, `response_format`, `temperature`) plus the gateway's `vad_filter`. OpenAI's
 * translations take no `language` (the speech's language is detected), no
 * `timestamp_granularities[]` and no `stream`: those are answered 400 `unknown_parameter`, as any
 * field not declared here. Every message starts with the field's name: the error filter reports it
 * as the OpenAI error's `param`.
 */
export class TranslationRequestDto {
  /**
   * `whisper-1` (the default engine when it can translate, else the first enabled engine that
   * can), an engine id that can translate (`whisper-rocm`, `whisperx`, `openai`), or
   * `engine:model`. See `GET /v1/models` and `translation` in `/api/transcribe/jobs/engines`.
   */
  @IsString({ message: 'model must be a string such as whisper-1, an engine id, or engine:model' })
  @IsNotEmpty({ message: 'model is required: whisper-1, an engine id, or engine:model (see GET /v1/models)' })
  @MaxLength(200, { message: 'model must be at most 200 characters' })
  @NoNulCharacters()
  model!: string;

  /** Text that guides the translation's style (OpenAI: should be in English), up to 1000 characters. */
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

  /** The gateway's `vad_filter` (as in faster-whisper and speaches; default true): send the engine speech only. */
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean({ message: 'vad_filter must be true or false' })
  vad_filter?: boolean;

  /**
   * `file` sent as a text field rather than a file part. Declared only so that it is answered
   * "file is required" (param `file`) instead of "unrecognized argument".
   */
  @IsOptional()
  @Allow()
  file?: unknown;
}
