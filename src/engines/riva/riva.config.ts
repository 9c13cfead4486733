import { Transform } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { accessSync, constants } from 'node:fs';
import { parseEnv } from '../../config/app-config.js';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value.trim()) : value;

/** Bytes per second of the audio the gateway sends: 16 000 samples/s × 2 bytes (s16le) × 1 channel. */
export const PCM_BYTES_PER_SEC = 32_000;

/**
 * Room left in each request for everything that is not audio: the RecognitionConfig (boost
 * phrases included: a full context of 1000 phrases × 200 chars is about 205 KB on the wire) and
 * gRPC framing. Small enough that 120 s chunks (3.84 MB) still fit the 4 MiB gRPC default.
 */
export const REQUEST_OVERHEAD_BYTES = 256 * 1024;

/**
 * `RIVA_METADATA`: comma-separated `key=value` pairs sent as gRPC metadata on every call, e.g.
 * `authorization=Bearer nvapi-xxx,function-id=0123-abcd` for NVIDIA-hosted endpoints. Keys are
 * case-insensitive header names (sent lower-case); a value runs to the next comma and may contain
 * `=` and spaces; surrounding spaces are trimmed. Binary (`-bin`) keys are not supported.
 */
const METADATA_PATTERN = /^\s*[A-Za-z0-9_.-]+\s*=[^,]*(,\s*[A-Za-z0-9_.-]+\s*=[^,]*)*$/;

/**
 * Environment of the `riva` engine (NVIDIA Riva ASR or a Riva ASR NIM such as parakeet, over gRPC).
 *
 * The engine is enabled when `RIVA_ENABLED=true`, or when `RIVA_URI` is set and `RIVA_ENABLED` is
 * not `false` (naming a server is taken as asking for it). These variables are validated only
 * when the engine is enabled.
 */
export class RivaConfig {
  /** `true` enables the engine; `false` disables it even with RIVA_URI set; unset = enabled iff RIVA_URI is set. */
  @IsIn(['true', 'false'])
  RIVA_ENABLED = 'false';

  /** `host:port` of the Riva gRPC server (ASR and health on the same port); the NIM default port is 50051. */
  @IsString()
  @Matches(/^[^\s/]+:\d{1,5}$/, { message: "RIVA_URI must be host:port, e.g. 'parakeet-nim:50051' or 'grpc.nvcf.nvidia.com:443'" })
  RIVA_URI = 'parakeet-nim:50051';

  /** Model name sent in RecognitionConfig.model; unset = the server picks a model for the language. */
  @IsOptional()
  @IsString()
  RIVA_MODEL?: string;

  /** BCP-47 language code used when a request names none (Riva requires one). */
  @Matches(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$|^multi$/, { message: "RIVA_LANGUAGE must be a BCP-47 code such as 'en-US'" })
  RIVA_LANGUAGE = 'en-US';

  /** `true` = TLS (required by NVIDIA-hosted endpoints); `false` = plaintext (a NIM on a private network). */
  @IsIn(['true', 'false'])
  RIVA_USE_SSL = 'false';

  /** PEM file of the CA that signed the server certificate; unset = the system roots (with RIVA_USE_SSL=true). */
  @IsOptional()
  @IsString()
  RIVA_SSL_CA_FILE?: string;

  /** Extra gRPC metadata on every call: `key=value,key2=value2` (see METADATA_PATTERN above). */
  @IsOptional()
  @Matches(METADATA_PATTERN, { message: "RIVA_METADATA must be comma-separated key=value pairs, e.g. 'authorization=Bearer nvapi-xxx,function-id=abc'" })
  RIVA_METADATA?: string;

  /** Milliseconds one Recognize call may take (gRPC deadline); past it the call fails as retryable ENGINE_TIMEOUT. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  RIVA_DEADLINE_MS = 120_000;

  /** Largest gRPC message we send, bytes. 64 MiB like NVIDIA's own clients (the gRPC default is 4 MiB). */
  @Transform(toInt)
  @IsInt()
  @Min(1024 * 1024)
  @Max(2_147_483_647)
  RIVA_MAX_SEND_MESSAGE_BYTES = 64 * 1024 * 1024;

  /** Largest gRPC message we accept, bytes. 64 MiB like NVIDIA's own clients. */
  @Transform(toInt)
  @IsInt()
  @Min(1024 * 1024)
  @Max(2_147_483_647)
  RIVA_MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024 * 1024;

  /** SpeakerDiarizationConfig.max_speaker_count when a request asks for diarization without a maximum (Riva's default is 8). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(32)
  RIVA_MAX_SPEAKERS = 8;

  /** RecognitionConfig.enable_automatic_punctuation. */
  @IsIn(['true', 'false'])
  RIVA_AUTOMATIC_PUNCTUATION = 'true';

  /**
   * Seconds: audio longer than this goes through the gateway's chunker; shorter audio is sent
   * whole in one Recognize. 300 s × 32 000 B/s = 9.6 MB, under the 64 MiB limits.
   */
  @Transform(toInt)
  @IsInt()
  @Min(10)
  RIVA_CHUNKING_THRESHOLD = 300;

  /**
   * Seconds of audio per chunk. 120 s × 32 000 B/s = 3.84 MB per Recognize: under even the 4 MiB
   * gRPC default (4 194 304 B), so chunks pass proxies left at that default, and far under the
   * configured limits. Checked against RIVA_MAX_SEND_MESSAGE_BYTES at boot.
   */
  @Transform(toInt)
  @IsInt()
  @Min(5)
  RIVA_CHUNK_DURATION = 120;
}

/**
 * Rules between variables that class-validator cannot express: every request we may send must
 * fit under the send limit, with REQUEST_OVERHEAD_BYTES to spare.
 */
export function rivaConfigProblems(config: RivaConfig): string[] {
  const problems: string[] = [];
  const budget = config.RIVA_MAX_SEND_MESSAGE_BYTES - REQUEST_OVERHEAD_BYTES;
  if (config.RIVA_CHUNK_DURATION * PCM_BYTES_PER_SEC >= budget) {
    problems.push(
      `RIVA_CHUNK_DURATION=${config.RIVA_CHUNK_DURATION} s is ${config.RIVA_CHUNK_DURATION * PCM_BYTES_PER_SEC} bytes of 16 kHz mono PCM, which does not fit in RIVA_MAX_SEND_MESSAGE_BYTES=${config.RIVA_MAX_SEND_MESSAGE_BYTES} (minus ${REQUEST_OVERHEAD_BYTES} for the config); at most ${Math.ceil(budget / PCM_BYTES_PER_SEC) - 1} s`,
    );
  }
  if (config.RIVA_CHUNKING_THRESHOLD * PCM_BYTES_PER_SEC >= budget) {
    problems.push(
      `RIVA_CHUNKING_THRESHOLD=${config.RIVA_CHUNKING_THRESHOLD} s lets whole files of ${config.RIVA_CHUNKING_THRESHOLD * PCM_BYTES_PER_SEC} bytes through, more than RIVA_MAX_SEND_MESSAGE_BYTES=${config.RIVA_MAX_SEND_MESSAGE_BYTES} allows; at most ${Math.ceil(budget / PCM_BYTES_PER_SEC) - 1} s`,
    );
  }
  if (config.RIVA_CHUNK_DURATION > config.RIVA_CHUNKING_THRESHOLD) {
    problems.push(`RIVA_CHUNK_DURATION (${config.RIVA_CHUNK_DURATION} s) must not exceed RIVA_CHUNKING_THRESHOLD (${config.RIVA_CHUNKING_THRESHOLD} s)`);
  }
  if (config.RIVA_SSL_CA_FILE) {
    if (config.RIVA_USE_SSL !== 'true') problems.push('RIVA_SSL_CA_FILE is set but RIVA_USE_SSL is not true');
    try {
      accessSync(config.RIVA_SSL_CA_FILE, constants.R_OK);
    } catch {
      problems.push(`RIVA_SSL_CA_FILE '${config.RIVA_SSL_CA_FILE}' cannot be read`);
    }
  }
  return problems;
}

/** Whether the environment enables the riva engine (see RivaConfig). Reads the raw variables, so "unset" and "false" differ. */
export function rivaEnabled(env: NodeJS.ProcessEnv): boolean {
  const flag = env.RIVA_ENABLED?.trim();
  if (flag === 'true') return true;
  if (flag === 'false') return false;
  return !!env.RIVA_URI?.trim();
}

/**
 * Parses the riva section of the environment.
 *
 * @returns whether the engine is enabled, the parsed config and every problem found
 *   (class-validator rules plus rivaConfigProblems); problems matter only when enabled.
 */
export function parseRivaEnv(env: NodeJS.ProcessEnv): { enabled: boolean; value: RivaConfig; problems: string[] } {
  const { value, problems } = parseEnv(RivaConfig, env);
  return { enabled: rivaEnabled(env), value, problems: problems.length > 0 ? problems : rivaConfigProblems(value) };
}

/**
 * Parses RIVA_METADATA into `[key, value]` pairs (keys lower-cased, as gRPC requires).
 * The format is validated at boot by RivaConfig.
 */
export function parseRivaMetadata(raw: string | undefined): [string, string][] {
  if (!raw?.trim()) return [];
  return raw.split(',').map((pair) => {
    const eq = pair.indexOf('=');
    return [pair.slice(0, eq).trim().toLowerCase(), pair.slice(eq + 1).trim()] as [string, string];
  });
}
