import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsNotEmpty, IsOptional, IsString, IsUrl, Matches, Max, Min, ValidateIf } from 'class-validator';
import type { OpenAiCompatibleInstance } from './openai-compatible.engine.js';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;

const URL_OPTIONS = { require_tld: false, require_protocol: true, protocols: ['http', 'https'] };

/**
 * Environment of the `whisper-rocm` engine: the project's Whisper service on AMD GPUs
 * (engines/whisper-rocm), or any server speaking the OpenAI transcription API.
 *
 * Enabled when WHISPER_ROCM_ENABLED=true, or when WHISPER_ROCM_URL is set and
 * WHISPER_ROCM_ENABLED is not (see isWhisperRocmEnabled): GPU engines stay off until configured.
 */
export class WhisperRocmConfig {
  /** `true` enables the engine; `false` keeps it off even when WHISPER_ROCM_URL is set. */
  @IsIn(['true', 'false'])
  WHISPER_ROCM_ENABLED = 'false';

  /** Base URL of the service (the adapter appends `/v1/audio/transcriptions`; a trailing `/v1` is accepted). */
  @IsUrl(URL_OPTIONS, { message: 'WHISPER_ROCM_URL must be an http(s) URL such as http://whisper-rocm:9000' })
  WHISPER_ROCM_URL = 'http://whisper-rocm:9000';

  /** Sent as `Authorization: Bearer <key>`; the service's API_KEY, when it has one. */
  @IsOptional()
  @IsString()
  WHISPER_ROCM_API_KEY?: string;

  /** `model` form field: `whisper-1` or the loaded model's name (the service answers 400 otherwise). */
  @IsString()
  @IsNotEmpty()
  WHISPER_ROCM_MODEL = 'whisper-1';

  /** Seconds one request (upload, recognition, response) may take before it fails with ENGINE_TIMEOUT. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  WHISPER_ROCM_TIMEOUT = 600;

  /**
   * Audio longer than this many seconds is cut into chunks by the gateway. 0 = never chunk: Whisper
   * walks any length in 30 s windows itself, at the price of one long request per recording.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  WHISPER_ROCM_CHUNKING_THRESHOLD = 300;

  /** Target chunk length, seconds. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  WHISPER_ROCM_CHUNK_DURATION = 120;

  /** Requests (chunks) sent at once: the number of service replicas, since each runs one transcription at a time. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(64)
  WHISPER_ROCM_CONCURRENCY = 1;

  /** The service's MAX_UPLOAD_BYTES, when it is below the audio the gateway may send; unset = no limit. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  WHISPER_ROCM_MAX_UPLOAD_BYTES?: number;
}

/**
 * Environment of the `openai` engine: the OpenAI cloud by default, or any other
 * OpenAI-compatible transcription server (speaches, vLLM, whisper.cpp's server) through
 * OPENAI_BASE_URL. Enabled only by OPENAI_ENABLED=true: an OPENAI_API_KEY present for other
 * tools must never send audio to a paid cloud service on its own.
 */
export class OpenAiConfig {
  @IsIn(['true', 'false'])
  OPENAI_ENABLED = 'false';

  /** Server root; `https://api.openai.com/v1` (the SDKs' form) is accepted too. */
  @IsUrl(URL_OPTIONS, { message: 'OPENAI_BASE_URL must be an http(s) URL such as https://api.openai.com' })
  OPENAI_BASE_URL = 'https://api.openai.com';

  /** Bearer key. Required when enabled; for a local server without keys any non-empty value does. */
  @ValidateIf((c: OpenAiConfig) => c.OPENAI_ENABLED === 'true')
  @IsString()
  @IsNotEmpty({ message: 'OPENAI_API_KEY is required when OPENAI_ENABLED=true' })
  OPENAI_API_KEY?: string;

  /** Must support `response_format=verbose_json` with word timestamps (`whisper-1` on the OpenAI cloud; not the gpt-4o transcribe models). */
  @IsString()
  @IsNotEmpty()
  OPENAI_MODEL = 'whisper-1';

  /** Seconds one request may take before it fails with ENGINE_TIMEOUT. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  OPENAI_TIMEOUT = 300;

  /**
   * Health probe path (e.g. `/health` for speaches, vLLM, whisper.cpp's server); unset = the
   * OpenAI cloud's way: `GET /v1/models` with the key.
   */
  @IsOptional()
  @Matches(/^\/\S*$/, { message: 'OPENAI_HEALTH_PATH must be a path starting with /' })
  OPENAI_HEALTH_PATH?: string;

  /**
   * Largest request body, bytes: OpenAI caps uploads at 25 MB, enforced as 26 214 400 bytes.
   * Sets `max_duration_sec` (16 kHz mono s16le = 32 000 bytes per second); 0 = no limit.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  OPENAI_MAX_UPLOAD_BYTES = 26_214_400;

  /** Audio longer than this many seconds is cut into chunks; 300 s = 9.6 MB of PCM, far under the cap. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  OPENAI_CHUNKING_THRESHOLD = 300;

  /** Target chunk length, seconds (120 s = 3.84 MB per upload). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  OPENAI_CHUNK_DURATION = 120;

  /** Requests (chunks) sent at once; lower it when the account's rate limit answers 429. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(64)
  OPENAI_CONCURRENCY = 4;

  /**
   * `true`: the server has `POST /v1/audio/translations` (the OpenAI cloud with whisper-1,
   * speaches, vLLM) and the engine accepts `task=translate`; `false` for servers or models
   * without it (the gpt-4o transcribe models): translations are then refused at submit.
   */
  @IsIn(['true', 'false'])
  OPENAI_TRANSLATION = 'true';
}

const explicitlySet = (env: NodeJS.ProcessEnv, key: string) => env[key] !== undefined && env[key] !== '';

/**
 * WHISPER_ROCM_ENABLED=true enables it; =false disables it; unset, setting WHISPER_ROCM_URL
 * enables it (pointing the gateway at a service is configuring it).
 */
export function isWhisperRocmEnabled(env: NodeJS.ProcessEnv): boolean {
  const flag = env.WHISPER_ROCM_ENABLED?.trim();
  if (flag === 'true') return true;
  if (explicitlySet(env, 'WHISPER_ROCM_ENABLED')) return false;
  return explicitlySet(env, 'WHISPER_ROCM_URL');
}

/** Only OPENAI_ENABLED=true enables the `openai` engine. */
export function isOpenAiEnabled(env: NodeJS.ProcessEnv): boolean {
  return env.OPENAI_ENABLED?.trim() === 'true';
}

/** The adapter instance for `whisper-rocm` (the project's service, which has `GET /health`). */
export function whisperRocmInstance(c: WhisperRocmConfig): OpenAiCompatibleInstance {
  return {
    id: 'whisper-rocm',
    displayName: 'Whisper on AMD ROCm (OpenAI transcription API)',
    baseUrl: c.WHISPER_ROCM_URL,
    apiKey: c.WHISPER_ROCM_API_KEY,
    model: c.WHISPER_ROCM_MODEL,
    timeoutMs: c.WHISPER_ROCM_TIMEOUT * 1000,
    healthPath: '/health',
    maxUploadBytes: c.WHISPER_ROCM_MAX_UPLOAD_BYTES,
    chunkingThresholdSec: c.WHISPER_ROCM_CHUNKING_THRESHOLD === 0 ? null : c.WHISPER_ROCM_CHUNKING_THRESHOLD,
    wholeFile: c.WHISPER_ROCM_CHUNKING_THRESHOLD === 0,
    chunkDurationSec: c.WHISPER_ROCM_CHUNK_DURATION,
    concurrency: c.WHISPER_ROCM_CONCURRENCY,
    // The service implements /v1/audio/translations (openai-whisper's task="translate").
    translation: true,
  };
}

/** The adapter instance for `openai`. */
export function openAiInstance(c: OpenAiConfig): OpenAiCompatibleInstance {
  let host = c.OPENAI_BASE_URL;
  try {
    host = new URL(c.OPENAI_BASE_URL).host;
  } catch {
    // Reported by validation; the display name keeps the raw value.
  }
  return {
    id: 'openai',
    displayName: `OpenAI transcription API (${host})`,
    baseUrl: c.OPENAI_BASE_URL,
    apiKey: c.OPENAI_API_KEY,
    model: c.OPENAI_MODEL,
    timeoutMs: c.OPENAI_TIMEOUT * 1000,
    healthPath: c.OPENAI_HEALTH_PATH ?? null,
    maxUploadBytes: c.OPENAI_MAX_UPLOAD_BYTES === 0 ? undefined : c.OPENAI_MAX_UPLOAD_BYTES,
    chunkingThresholdSec: c.OPENAI_CHUNKING_THRESHOLD,
    wholeFile: false,
    chunkDurationSec: c.OPENAI_CHUNK_DURATION,
    concurrency: c.OPENAI_CONCURRENCY,
    translation: c.OPENAI_TRANSLATION === 'true',
  };
}
