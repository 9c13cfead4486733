import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * The one place that speaks gRPC to NVIDIA Riva. Everything else in the gateway sees the plain
 * message shapes below and RivaCallError; nothing else imports @grpc/grpc-js.
 *
 * The protos are the project's own (proto/riva/*.proto, proto/grpc/health/v1/health.proto),
 * written from /work/shared/docs/ENGINES.md §1 and loaded at run time by @grpc/proto-loader.
 */

/** Proto files, relative to the proto directory (imports resolve from there too). */
export const RIVA_PROTO_FILES = ['riva/riva_asr.proto', 'grpc/health/v1/health.proto'];

/**
 * proto-loader options, shared by the client, the Riva test server and the wire tests:
 * field names exactly as in the .proto (snake_case), 64-bit integers as JS numbers, enums as
 * their names (`'LINEAR_PCM'`, `'SERVING'`), every field present with its default on decoded
 * messages, and the name of the set field on oneofs.
 */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

/**
 * The project's proto directory. Found by walking up from this module's own location, so it
 * works from the sources (ts-jest: src/engines/riva/) and from the build (dist/src/engines/riva/)
 * whatever the working directory; the working directory's `proto/` is the last resort.
 *
 * @throws Error when no directory with riva/riva_asr.proto is found.
 */
export function rivaProtoDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'proto');
    if (existsSync(path.join(candidate, 'riva', 'riva_asr.proto'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  const fromCwd = path.resolve('proto');
  if (existsSync(path.join(fromCwd, 'riva', 'riva_asr.proto'))) return fromCwd;
  throw new Error(`the Riva proto files (proto/riva/riva_asr.proto) were not found above ${fileURLToPath(import.meta.url)} nor in ${process.cwd()}`);
}

let packageDefinition: protoLoader.PackageDefinition | undefined;

/** The loaded Riva ASR and gRPC health definitions (loaded once per process). */
export function loadRivaPackageDefinition(): protoLoader.PackageDefinition {
  packageDefinition ??= protoLoader.loadSync(RIVA_PROTO_FILES, { ...PROTO_LOADER_OPTIONS, includeDirs: [rivaProtoDir()] });
  return packageDefinition;
}

// ---- Message shapes (proto field names; see proto/riva/riva_asr.proto) ----

export type RivaAudioEncoding = 'ENCODING_UNSPECIFIED' | 'LINEAR_PCM' | 'FLAC' | 'MULAW' | 'OGGOPUS' | 'ALAW';

/** Word boosting: phrases sharing one boost level. */
export interface RivaSpeechContext {
  phrases: string[];
  /** Positive favours, negative suppresses. */
  boost: number;
}

export interface RivaSpeakerDiarizationConfig {
  enable_speaker_diarization: boolean;
  max_speaker_count: number;
}

/** nvidia.riva.asr.RecognitionConfig, as this gateway fills it. */
export interface RivaRecognitionConfig {
  encoding: RivaAudioEncoding;
  sample_rate_hertz: number;
  /** BCP-47, required by Riva. */
  language_code: string;
  max_alternatives: number;
  profanity_filter?: boolean;
  speech_contexts?: RivaSpeechContext[];
  audio_channel_count: number;
  enable_word_time_offsets: boolean;
  enable_automatic_punctuation: boolean;
  enable_separate_recognition_per_channel?: boolean;
  /** Empty = server's choice. */
  model?: string;
  verbatim_transcripts?: boolean;
  diarization_config?: RivaSpeakerDiarizationConfig;
  custom_configuration?: Record<string, string>;
}

export interface RivaRecognizeRequest {
  config: RivaRecognitionConfig;
  /** Raw audio in config.encoding (for LINEAR_PCM: s16le samples, no WAV header). */
  audio: Buffer;
  id?: { value: string };
}

export interface RivaWordInfo {
  /** Milliseconds. */
  start_time: number;
  /** Milliseconds. */
  end_time: number;
  word: string;
  confidence: number;
  /** 1..N with diarization, 0 otherwise. */
  speaker_tag: number;
  language_code: string;
}

export interface RivaSpeechRecognitionAlternative {
  transcript: string;
  confidence: number;
  words: RivaWordInfo[];
  language_code: string[];
}

export interface RivaSpeechRecognitionResult {
  alternatives: RivaSpeechRecognitionAlternative[];
  channel_tag: number;
  /** Seconds. */
  audio_processed: number;
}

export interface RivaRecognizeResponse {
  results: RivaSpeechRecognitionResult[];
  id: { value: string } | null;
}

/** One deployed model, from GetRivaSpeechRecognitionConfig. */
export interface RivaModelConfig {
  model_name: string;
  /** Model parameters as the server reports them (e.g. `language_code`, `type`, `streaming`). */
  parameters: Record<string, string>;
}

export type RivaServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

// ---- Errors ----

/**
 * A failed gRPC call, with the status both as number and as name (`UNAVAILABLE`,
 * `INVALID_ARGUMENT`…). `details` is the server's (or grpc-js's own) status message.
 */
export class RivaCallError extends Error {
  constructor(
    readonly code: number,
    readonly status: string,
    readonly details: string,
    /** Which RPC failed, e.g. `Recognize`. */
    readonly method: string,
    options?: { cause?: unknown },
  ) {
    super(`${method} failed with ${status}: ${details}`, options);
    this.name = 'RivaCallError';
  }
}

function toCallError(err: unknown, method: string): RivaCallError {
  const e = err as Partial<grpc.ServiceError>;
  const code = typeof e.code === 'number' ? e.code : grpc.status.UNKNOWN;
  return new RivaCallError(code, grpc.status[code] ?? String(code), e.details ?? (err instanceof Error ? err.message : String(err)), method, { cause: err });
}

// ---- The client ----

export interface RivaClientOptions {
  /** `host:port`. */
  uri: string;
  useSsl: boolean;
  /** PEM CA bundle path; unset = system roots. Only with useSsl. */
  caFile?: string;
  /** Sent as metadata on every call (keys lower-case). */
  metadata: [string, string][];
  /** Default per-call deadline, ms. */
  deadlineMs: number;
  /** Channel limits, bytes. */
  maxSendMessageBytes: number;
  maxReceiveMessageBytes: number;
}

/** Per-call options. */
export interface RivaCallOptions {
  /** Cancels the call (the promise then rejects with status CANCELLED). */
  signal?: AbortSignal;
  /** Overrides the default deadline, ms. */
  deadlineMs?: number;
}

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response: unknown) => void,
) => grpc.ClientUnaryCall;

/**
 * gRPC client of one Riva server: RivaSpeechRecognition (Recognize, GetRivaSpeechRecognitionConfig)
 * and grpc.health.v1.Health/Check over one channel. Every call carries the configured metadata
 * and a deadline, and can be cancelled through an AbortSignal.
 *
 * Only unary Recognize is used for recognition, not StreamingRecognize. The gateway hands the
 * adapter one chunk (≤ RIVA_CHUNK_DURATION) or one short file (≤ RIVA_CHUNKING_THRESHOLD) at a
 * time; Riva's offline pipeline decodes that in seconds on a GPU with the whole piece as context,
 * and progress over a long recording already comes from chunks done / total. Streaming would only
 * add live `audio_processed` progress inside one piece, at the cost of pacing audio in small
 * messages, stitching `is_final` results, and requiring a model deployed for streaming.
 */
export class RivaClient {
  private readonly asr: grpc.Client;
  private readonly health: grpc.Client;

  constructor(private readonly options: RivaClientOptions) {
    const pkg = grpc.loadPackageDefinition(loadRivaPackageDefinition()) as unknown as {
      nvidia: { riva: { asr: { RivaSpeechRecognition: grpc.ServiceClientConstructor } } };
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    const credentials = options.useSsl
      ? grpc.credentials.createSsl(options.caFile ? readFileSync(options.caFile) : null)
      : grpc.credentials.createInsecure();
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_send_message_length': options.maxSendMessageBytes,
      'grpc.max_receive_message_length': options.maxReceiveMessageBytes,
    };
    this.asr = new pkg.nvidia.riva.asr.RivaSpeechRecognition(options.uri, credentials, channelOptions);
    // The health service is on the same port: share the channel (one connection, one TLS session).
    this.health = new pkg.grpc.health.v1.Health(options.uri, credentials, { ...channelOptions, channelOverride: this.asr.getChannel() });
  }

  /**
   * nvidia.riva.asr.RivaSpeechRecognition/Recognize.
   * @throws RivaCallError (DEADLINE_EXCEEDED past the deadline, CANCELLED on abort, or the server's status).
   */
  recognize(request: RivaRecognizeRequest, options: RivaCallOptions = {}): Promise<RivaRecognizeResponse> {
    return this.unary(this.asr, 'Recognize', request, options);
  }

  /**
   * nvidia.riva.asr.RivaSpeechRecognition/GetRivaSpeechRecognitionConfig: the deployed models.
   * @param modelName one model, or '' for all.
   * @throws RivaCallError
   */
  async speechRecognitionConfig(modelName = '', options: RivaCallOptions = {}): Promise<RivaModelConfig[]> {
    const res = await this.unary<{ model_config: RivaModelConfig[] }>(this.asr, 'GetRivaSpeechRecognitionConfig', { model_name: modelName }, options);
    return res.model_config;
  }

  /**
   * grpc.health.v1.Health/Check.
   * @param service '' for the server as a whole.
   * @throws RivaCallError (e.g. UNIMPLEMENTED when the server has no health service).
   */
  async healthCheck(service = '', options: RivaCallOptions = {}): Promise<RivaServingStatus> {
    const res = await this.unary<{ status: RivaServingStatus }>(this.health, 'Check', { service }, options);
    return res.status;
  }

  /** Closes the channel; later calls fail. */
  close(): void {
    this.asr.close();
  }

  private callMetadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    for (const [key, value] of this.options.metadata) metadata.add(key, value);
    return metadata;
  }

  private unary<T>(client: grpc.Client, method: string, request: unknown, options: RivaCallOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) {
        reject(new RivaCallError(grpc.status.CANCELLED, 'CANCELLED', 'cancelled before the call started', method));
        return;
      }
      const fn = (client as unknown as Record<string, UnaryMethod>)[method];
      const call: grpc.ClientUnaryCall = fn.call(
        client,
        request,
        this.callMetadata(),
        { deadline: Date.now() + (options.deadlineMs ?? this.options.deadlineMs) },
        (err, response) => {
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(toCallError(err, method));
          else resolve(response as T);
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      // Declared after the call: the callback runs asynchronously, never before this line.
      function onAbort() {
        call.cancel();
      }
    });
  }
}
