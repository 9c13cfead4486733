import { Transform } from 'class-transformer';
import {
  ArrayNotEmpty,
  IsArray,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  IsUrl,
  Max,
  Min,
  Validate,
  ValidatorConstraint,
  type ValidationArguments,
  type ValidatorConstraintInterface,
} from 'class-validator';

/** The models the project's engines/whisperx service (and WhisperX itself) can load. */
export const WHISPERX_MODELS = ['tiny', 'base', 'small', 'medium', 'large-v2', 'large-v3'] as const;

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value.trim()) : value;

/** `a, b,,c` → `['a', 'b', 'c']`; arrays (the default) pass through. */
const toList = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter((s) => s !== '') : value;

@ValidatorConstraint({ name: 'defaultModelInList' })
class DefaultModelInList implements ValidatorConstraintInterface {
  validate(value: unknown, args: ValidationArguments): boolean {
    const list = (args.object as WhisperxConfig).WHISPERX_AVAILABLE_MODELS;
    return typeof value === 'string' && Array.isArray(list) && list.includes(value);
  }

  defaultMessage(args: ValidationArguments): string {
    const list = (args.object as WhisperxConfig).WHISPERX_AVAILABLE_MODELS;
    return `WHISPERX_DEFAULT_MODEL must be one of WHISPERX_AVAILABLE_MODELS (${Array.isArray(list) ? list.join(', ') : '?'})`;
  }
}

/**
 * Environment of the `whisperx` engine: a whisper-asr-webservice-compatible HTTP server
 * (`POST /asr`), either the project's engines/whisperx service or a stock
 * `onerahmet/openai-whisper-asr-webservice` container started with `ASR_ENGINE=whisperx`.
 *
 * The engine is off by default and switched on by {@link isWhisperxEnabled}; its variables are
 * validated only then.
 */
export class WhisperxConfig {
  /**
   * `true` / `false` switch the engine on / off. Unset: on exactly when WHISPERX_SERVICE_URL is
   * set, so pointing the gateway at a server is enough.
   */
  @IsOptional()
  @IsIn(['true', 'false'])
  WHISPERX_ENABLED?: string;

  /** Base URL of the server (no trailing `/asr`), e.g. `http://whisperx:9000`. */
  @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] }, { message: 'WHISPERX_SERVICE_URL must be an http:// or https:// URL' })
  WHISPERX_SERVICE_URL = 'http://whisperx:9000';

  /**
   * Comma-separated model names a request may choose (`model`), reported by `/engines`. A stock
   * whisper-asr-webservice serves only its `ASR_MODEL`: list just that one there.
   */
  @Transform(toList)
  @IsArray({ message: 'WHISPERX_AVAILABLE_MODELS must be a comma-separated list of model names' })
  @ArrayNotEmpty({ message: 'WHISPERX_AVAILABLE_MODELS must name at least one model' })
  @IsString({ each: true })
  WHISPERX_AVAILABLE_MODELS: string[] = [...WHISPERX_MODELS];

  /**
   * Model used when a request names none; must be in WHISPERX_AVAILABLE_MODELS. With
   * WHISPERX_SEND_MODEL=false it is not sent, only reported: set it to the server's own model.
   */
  @IsString()
  @IsNotEmpty()
  @Validate(DefaultModelInList)
  WHISPERX_DEFAULT_MODEL = 'base';

  /**
   * Seconds one `/asr` call (upload, recognition, alignment, diarization, answer) may take. The
   * whole file goes in one call, so this bounds the longest recording: WhisperX on a GPU runs
   * far faster than real time, on a CPU about real time.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(86_400)
  WHISPERX_TIMEOUT = 1800;

  /**
   * `true`: send the `model` query parameter (the project's service chooses the model per
   * request). `false` for a stock whisper-asr-webservice, which has no such parameter and always
   * uses its `ASR_MODEL`.
   */
  @IsIn(['true', 'false'])
  WHISPERX_SEND_MODEL = 'true';
}

/**
 * Whether the `whisperx` engine is switched on in `env`: WHISPERX_ENABLED when given; otherwise
 * on exactly when WHISPERX_SERVICE_URL is set (empty strings count as unset). An invalid
 * WHISPERX_ENABLED counts as on, so that its problem is reported at boot rather than ignored.
 */
export function isWhisperxEnabled(env: NodeJS.ProcessEnv): boolean {
  const flag = env.WHISPERX_ENABLED?.trim();
  if (flag === 'false') return false;
  if (flag) return true;
  return Boolean(env.WHISPERX_SERVICE_URL?.trim());
}
