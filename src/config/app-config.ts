import 'reflect-metadata';
import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsNotEmpty,
  IsString,
  Matches,
  Max,
  Min,
  IsOptional,
  ValidateIf,
  validateSync,
  type ValidationError,
} from 'class-validator';
import path from 'node:path';
import os from 'node:os';

/** Which parts of the gateway this process runs: the HTTP API, the queue workers, or both. */
export const APP_ROLES = ['api', 'worker', 'all'] as const;
export type AppRole = (typeof APP_ROLES)[number];

/** How submissions are probed (INGEST_PROBE). */
export const INGEST_PROBES = ['header', 'ffprobe'] as const;
export type IngestProbe = (typeof INGEST_PROBES)[number];

const toNumber = ({ value }: { value: unknown }) =>
  typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value.trim())) ? Number(value.trim()) : value;

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && value.trim() !== '' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;

/** `true`/`1`/`yes` and `false`/`0`/`no` (any case); anything else is left for @IsBoolean to reject. */
const toBool = ({ value }: { value: unknown }) => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  return ['true', '1', 'yes'].includes(v) ? true : ['false', '0', 'no'].includes(v) ? false : value;
};

/** Where uploaded audio is stored: files under DATA_DIR, or an S3-compatible object store (MinIO). */
export const STORAGE_DRIVERS = ['local', 'minio'] as const;
export type StorageDriverName = (typeof STORAGE_DRIVERS)[number];

/** `host`, `host:port`, `[v6]:port`, or `http(s)://` followed by one of those and an optional `/`. */
const S3_ENDPOINT = /^(https?:\/\/)?([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?\/?$/;
const usesMinio = (c: AppConfig) => c.STORAGE_DRIVER === 'minio';

/**
 * The gateway's environment, validated once at boot.
 *
 * Every variable has a default that makes the embedded setup (pocketsphinx, local storage,
 * Postgres and Redis on 127.0.0.1 started by scripts/start.sh) work without a `.env`.
 * Engine-specific variables live with their engine and are validated only when that engine
 * is enabled.
 */
export class AppConfig {
  /** `api` serves HTTP only, `worker` consumes queues only, `all` (default) does both. */
  @IsIn(APP_ROLES)
  APP_ROLE: AppRole = 'all';

  /** PostgreSQL connection URL, `postgres://user:pass@host:port/db`. */
  @Matches(/^postgres(ql)?:\/\/.+/, { message: 'DATABASE_URL must be a postgres:// URL' })
  DATABASE_URL = 'postgres://gateway:gateway@127.0.0.1:54329/gateway';

  /** Redis connection URL for BullMQ, `redis://[:password@]host:port[/db]`. */
  @Matches(/^rediss?:\/\/.+/, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL = 'redis://127.0.0.1:63799';

  /** Prefix of every BullMQ key in Redis; lets several gateways (or test runs) share one Redis. */
  @IsString()
  @IsNotEmpty()
  QUEUE_PREFIX = 'gateway';

  /** Seconds a finished job's state stays in Redis; afterwards status is read from Postgres. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  REDIS_JOB_TTL = 3600;

  /** Engine used when a submission names none. */
  @IsString()
  @IsNotEmpty()
  DEFAULT_TRANSCRIPTION_ENGINE = 'pocketsphinx';

  /** Largest accepted upload in bytes (default 2 GiB); larger uploads are answered 413. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_FILE_SIZE = 2_147_483_648;

  /**
   * Longest accepted recording in seconds (default 14 400 = 4 h; 0 = no limit). Checked at submit
   * from the container's header (413 AUDIO_TOO_LONG naming the limit and the file's duration) and
   * again by the worker on the decoded audio, which never decodes more than this plus one second.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  MAX_AUDIO_DURATION_SECONDS = 14_400;

  /**
   * Seconds an upload may send nothing before it is dropped (default 30; 0 = never): the client
   * gets 408 when the answer can still be written, and the partial temp file is removed.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  UPLOAD_IDLE_TIMEOUT = 30;

  /** HTTP port. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 8000;

  /** Host/interface to bind. */
  @IsString()
  HOST = '0.0.0.0';

  /** Allowed CORS origins: `*`, or a comma-separated list of origins. Empty disables CORS. */
  @IsString()
  CORS_ORIGIN = '*';

  /** Root of the local storage driver (uploaded audio). */
  @IsString()
  @IsNotEmpty()
  DATA_DIR = path.resolve('.data/storage');

  /** Where uploads land and each job gets its own scratch directory. */
  @IsString()
  @IsNotEmpty()
  TEMP_DIR = path.join(os.tmpdir(), 'transcription-gateway');

  /** Scratch directories older than this many hours are removed at startup. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_TEMP_AGE_HOURS = 24;

  /** ffmpeg binary (Debian's `ffmpeg` package by default). */
  @IsString()
  @IsNotEmpty()
  FFMPEG_PATH = 'ffmpeg';

  /** ffprobe binary (Debian's `ffmpeg` package by default). */
  @IsString()
  @IsNotEmpty()
  FFPROBE_PATH = 'ffprobe';

  /**
   * How a submission learns format, duration, channels and sample rate: `header` reads the
   * container header in-process (music-metadata; WAV, MP3, FLAC, Ogg) and asks ffprobe only for
   * what it cannot tell (other containers, video); `ffprobe` runs ffprobe on every submission
   * (the previous behaviour, kept for comparison). The worker decodes the whole file either way.
   */
  @IsIn(INGEST_PROBES)
  INGEST_PROBE: IngestProbe = 'header';

  /** Retries after the first attempt of a transcription job (stored in transcript_jobs.max_retries). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(20)
  JOB_MAX_RETRIES = 3;

  /** First retry delay in ms; BullMQ doubles it on each further retry (exponential backoff). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  JOB_BACKOFF_MS = 2000;

  /** Jobs one worker process runs at once. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(256)
  WORKER_CONCURRENCY = 2;

  /** Audio longer than this many seconds is cut into chunks (engines may override; see EngineCapabilities). */
  @Transform(toNumber)
  @IsNumber({}, { message: 'CHUNKING_THRESHOLD must be a number of seconds' })
  @Min(10)
  CHUNKING_THRESHOLD = 300;

  /** Target chunk length in seconds (engines may override). Cuts fall inside the pause nearest this length. */
  @Transform(toNumber)
  @IsNumber({}, { message: 'CHUNK_DURATION must be a number of seconds' })
  @Min(5)
  CHUNK_DURATION = 120;

  /** Level (dBFS) below which audio counts as a pause for ffmpeg silencedetect. */
  @Transform(toNumber)
  @IsNumber()
  @Max(0)
  CHUNK_SILENCE_DB = -35;

  /** Shortest pause (seconds) a chunk may be cut in; with none within ±20 % of the target, the cut is blind. */
  @Transform(toNumber)
  @IsNumber()
  @Min(0.05)
  CHUNK_MIN_SILENCE = 0.3;

  /** Seconds of overlap on each side of a blind cut (words are de-duplicated by their midpoint). */
  @Transform(toNumber)
  @IsNumber()
  @Min(0)
  CHUNK_BLIND_OVERLAP = 1;

  /**
   * Voice activity detection (Silero VAD, src/audio/vad.ts; docs/vad.md): speech probability per
   * 32 ms window at or above which speech starts (0–1). Speech ends only once the probability
   * falls below VAD_THRESHOLD − 0.15. Higher = fewer false alarms in noise, more missed soft speech.
   */
  @Transform(toNumber)
  @IsNumber({}, { message: 'VAD_THRESHOLD must be a probability between 0.05 and 0.95' })
  @Min(0.05)
  @Max(0.95)
  VAD_THRESHOLD = 0.5;

  /** VAD: milliseconds of speech a region needs (before padding); shorter bursts (clicks, coughs) are dropped. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(10_000)
  VAD_MIN_SPEECH_MS = 250;

  /**
   * VAD: milliseconds the probability must stay low before a region ends. 500 splits at pauses between
   * sentences and phrases but not inside them (pauses between words and stop closures are under
   * ~300 ms), so engines get whole phrases; Silero's own 100 ms cuts at every breath.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(60_000)
  VAD_MIN_SILENCE_MS = 500;

  /**
   * VAD: milliseconds added before and after every region (regions that then overlap are merged).
   * Covers Silero's late onsets and early offsets on soft sounds (fricatives, trailing consonants);
   * a little silence costs an engine less than a clipped word.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(10_000)
  VAD_SPEECH_PAD_MS = 300;

  /**
   * Engines to fall back to, in order, when an engine keeps failing with retryable errors:
   * `whisperx:whisper-rocm,pocketsphinx;riva:pocketsphinx`. Each engine gets 1 + JOB_MAX_RETRIES
   * attempts before the job moves to the next one; the result records which engine did the work.
   */
  @IsString()
  @Matches(/^$|^[a-z0-9-]+:[a-z0-9-]+(,[a-z0-9-]+)*(;[a-z0-9-]+:[a-z0-9-]+(,[a-z0-9-]+)*)*$/, {
    message: 'ENGINE_FALLBACKS must look like whisperx:whisper-rocm,pocketsphinx;riva:pocketsphinx',
  })
  ENGINE_FALLBACKS = '';

  /** Milliseconds a worker holds a job's lock between renewals; a killed worker's job is picked up again after it lapses. */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  WORKER_LOCK_DURATION_MS = 30_000;

  /** Milliseconds between checks for stalled jobs (jobs whose worker died). */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  WORKER_STALLED_INTERVAL_MS = 30_000;

  /** Seconds between audio-retention sweeps (AUDIO_RETENTION_HOURS decides what is old enough). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  RETENTION_SWEEP_INTERVAL_SEC = 3600;

  /** Worker role only: serve `/metrics` on this port (0 = off). The API role serves it on PORT. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  METRICS_PORT = 0;

  /** Seconds between engine health probes (cached for `/engines`). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  ENGINE_HEALTH_INTERVAL = 30;

  /** Milliseconds one engine health probe may take before the engine counts as unavailable. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  ENGINE_HEALTH_TIMEOUT_MS = 5000;

  /** `local` (default: files under DATA_DIR, API and workers share the disk) or `minio` (any S3-compatible store). */
  @IsIn(STORAGE_DRIVERS)
  STORAGE_DRIVER: StorageDriverName = 'local';

  /**
   * The S3/MinIO endpoint as this process reaches it: `host`, `host:port`, or `http(s)://host[:port]`
   * (a URL's scheme then decides TLS, overriding MINIO_USE_SSL).
   */
  @Matches(S3_ENDPOINT, { message: 'MINIO_ENDPOINT must be host, host:port or http(s)://host[:port]' })
  MINIO_ENDPOINT = '127.0.0.1:9000';

  /** Port when MINIO_ENDPOINT names none; without either, 443 with TLS and 80 without (the minio client's default). */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(65535)
  MINIO_PORT?: number;

  /** Whether to use HTTPS for a `host[:port]` MINIO_ENDPOINT (`true`/`false`). */
  @Transform(toBool)
  @IsBoolean({ message: 'MINIO_USE_SSL must be true or false' })
  MINIO_USE_SSL = false;

  /** Access key (MinIO root user or a service account). Required when STORAGE_DRIVER=minio. */
  @ValidateIf(usesMinio)
  @IsString()
  @IsNotEmpty({ message: 'MINIO_ACCESS_KEY is required when STORAGE_DRIVER=minio' })
  MINIO_ACCESS_KEY = '';

  /** Secret key for MINIO_ACCESS_KEY. Required when STORAGE_DRIVER=minio. */
  @ValidateIf(usesMinio)
  @IsString()
  @IsNotEmpty({ message: 'MINIO_SECRET_KEY is required when STORAGE_DRIVER=minio' })
  MINIO_SECRET_KEY = '';

  /** Bucket holding uploaded audio under `audio/<transcript id>/<file name>`; created at boot when missing. */
  @Matches(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'MINIO_BUCKET_NAME must be a valid S3 bucket name (3-63 of a-z 0-9 . -)' })
  MINIO_BUCKET_NAME = 'transcriptions';

  /** Region the bucket is created in and URLs are signed for (MinIO ignores it unless configured with one). */
  @IsString()
  @IsNotEmpty()
  MINIO_REGION = 'us-east-1';

  /**
   * Endpoint clients outside this host's network use to reach MinIO (same forms as MINIO_ENDPOINT).
   * Presigned URLs are signed for this host, because the signature covers it: rewriting the host of
   * a URL signed for MINIO_ENDPOINT (e.g. `minio:9000` inside docker-compose) would invalidate it.
   * Defaults to MINIO_ENDPOINT.
   */
  @IsOptional()
  @Matches(S3_ENDPOINT, { message: 'MINIO_PUBLIC_ENDPOINT must be host, host:port or http(s)://host[:port]' })
  MINIO_PUBLIC_ENDPOINT?: string;

  /** Hours after a transcript is created that its uploaded audio is deleted (transcripts are kept). 0 keeps audio forever. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  AUDIO_RETENTION_HOURS = 24;

  /** Seconds a presigned `audio_url` stays valid (S3 allows at most 7 days, 604800). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(604800)
  PRESIGNED_URL_TTL = 3600;

  /**
   * Accepted API keys, separated by commas (whitespace around them is ignored); printable ASCII.
   * Clients send one as `Authorization: Bearer <key>` or `X-API-Key: <key>` (see docs/security.md).
   * Merged with ASR_TOKEN. With neither set, authentication is off (the embedded default) and a
   * warning is logged at boot.
   */
  @Matches(/^[!-~\s]*$/, { message: 'API_KEYS must be keys of printable ASCII separated by commas' })
  API_KEYS = '';

  /** One more accepted key (the seed clients' bearer token), merged with API_KEYS; printable ASCII without spaces. */
  @Matches(/^[!-~]*$/, { message: 'ASR_TOKEN must be printable ASCII without spaces' })
  ASR_TOKEN = '';

  /** Requests per API key per minute (sliding window; per client IP when authentication is off). 0 turns the limit off. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  RATE_LIMIT_PER_MINUTE = 120;

  /** Job submissions per API key per minute, counted on top of RATE_LIMIT_PER_MINUTE. 0 turns the limit off. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  RATE_LIMIT_SUBMIT_PER_MINUTE = 30;

  /**
   * Seconds of audio one API key may have queued or running at once, over every replica (counted
   * in Redis). A submission that would go over it is refused with 429 and `Retry-After`; 0 turns
   * the quota off. Default 36000 (10 hours of audio).
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  MAX_QUEUED_AUDIO_SECONDS_PER_KEY = 36_000;

  /**
   * Fair scheduling across API keys (docs/scheduling.md): jobs and chunks take turns by key, by
   * BullMQ priority derived from the audio seconds each key has queued. false: first in, first out.
   */
  @Transform(toBool)
  @IsBoolean({ message: 'FAIR_SCHEDULING must be true or false' })
  FAIR_SCHEDULING = true;

  /**
   * Weights of API keys under fair scheduling: `<label>=<weight>` pairs separated by commas, where
   * the label is the key's 8-hex-character label (as in `/metrics`' `api_key`) or `anonymous`, and
   * the weight a number from 0.01 to 100 (default 1). A key of weight 4 gets four turns for every
   * turn of a key of weight 1 (e.g. an interactive key over a batch key).
   */
  @Matches(/^\s*((([0-9a-f]{8}|anonymous)\s*=\s*\d+(\.\d+)?)(\s*,\s*([0-9a-f]{8}|anonymous)\s*=\s*\d+(\.\d+)?)*)?\s*$/, {
    message: 'KEY_WEIGHTS must be <label>=<weight> pairs separated by commas, e.g. 3f2a9c1d=4,anonymous=1 (label: 8 hex characters or anonymous)',
  })
  KEY_WEIGHTS = '';

  /**
   * Lets `audio_url` downloads reach private (RFC 1918, 100.64/10, fc00::/7), loopback and
   * link-local addresses (`true`/`false`). Off by default so that a client cannot make the gateway
   * fetch from its own network (SSRF), cloud metadata endpoints included.
   */
  @Transform(toBool)
  @IsBoolean({ message: 'ALLOW_PRIVATE_URLS must be true or false' })
  ALLOW_PRIVATE_URLS = false;

  /** Milliseconds one `audio_url` download may take in all: every redirect, the headers and the whole body. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  URL_FETCH_TIMEOUT_MS = 60_000;

  /** Redirects an `audio_url` download follows (each hop is checked again); one more fails the submission. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(20)
  URL_MAX_REDIRECTS = 3;

  /**
   * Shared secret that signs webhooks (`X-Webhook-Signature: v1=<hex HMAC-SHA256>`, docs/webhooks.md),
   * at least 16 characters. Unset: submissions with a `callback_url` are refused with 400.
   */
  @IsOptional()
  @IsString()
  @Matches(/^.{16,}$/s, { message: 'WEBHOOK_SECRET must be at least 16 characters' })
  WEBHOOK_SECRET?: string;

  /** Attempts per webhook delivery in all (the first one included) before it is given up. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(30)
  WEBHOOK_MAX_ATTEMPTS = 8;

  /** First webhook retry delay in ms; BullMQ doubles it on each further retry (exponential backoff). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  WEBHOOK_BACKOFF_MS = 5000;

  /** Milliseconds one webhook attempt may take in all (connect, request, whole response); longer = failed attempt. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  WEBHOOK_TIMEOUT_MS = 10_000;

  /** Webhook deliveries one worker process runs at once. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(256)
  WEBHOOK_CONCURRENCY = 8;

  /** Hours an `Idempotency-Key` is remembered: within it, the same key and request return the same job. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(720)
  IDEMPOTENCY_TTL_HOURS = 24;

  /**
   * Milliseconds `POST /v1/audio/transcriptions` (the OpenAI-compatible API) waits for its job
   * before answering 504 (default 30 min); the job itself goes on and can be fetched by the
   * `x-transcription-job-id` the answer carries.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  OPENAI_API_WAIT_TIMEOUT_MS = 1_800_000;
}

/** Thrown at boot when the environment is invalid; the message lists every bad variable. */
export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid environment (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigValidationError';
  }
}

function flatten(errors: ValidationError[]): string[] {
  return errors.flatMap((e) => {
    const given = e.value === undefined ? '' : ` (got ${JSON.stringify(e.value)})`;
    return Object.values(e.constraints ?? {}).map((msg) => `${msg}${given}`);
  });
}

/**
 * Parses and validates one section of the environment into an instance of `cls`.
 * Only properties that `cls` declares with class-validator decorators are kept; empty strings
 * count as unset so that `FOO=` in a `.env` file falls back to the default.
 *
 * @returns the instance and a list of human-readable problems (empty when valid).
 */
export function parseEnv<T extends object>(
  cls: new () => T,
  env: NodeJS.ProcessEnv = process.env,
): { value: T; problems: string[] } {
  const given: Record<string, string> = {};
  for (const [key, v] of Object.entries(env)) if (v !== undefined && v !== '') given[key] = v;
  const value = plainToInstance(cls, given, { exposeDefaultValues: true });
  const errors = validateSync(value, { whitelist: true, forbidUnknownValues: true });
  return { value, problems: flatten(errors) };
}

/**
 * Builds the validated core configuration from an environment map (normally `process.env`).
 *
 * @throws ConfigValidationError listing every invalid variable at once.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const { value, problems } = parseEnv(AppConfig, env);
  if (problems.length > 0) throw new ConfigValidationError(problems);
  return value;
}

/** CORS origin setting for Nest's `enableCors`: `true` for `*`, a list otherwise, `false` when empty. */
export function corsOrigins(config: AppConfig): boolean | string[] {
  const raw = config.CORS_ORIGIN.trim();
  if (raw === '') return false;
  if (raw === '*') return true;
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}
