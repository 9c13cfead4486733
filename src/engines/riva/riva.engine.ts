import { randomUUID } from 'node:crypto';
import { open } from 'node:fs/promises';
import { AudioError } from '../../audio/audio.errors.js';
import { readWavHeader, type WavHeader } from '../../audio/wav.js';
import { EngineError, type EngineErrorCode } from '../engine.error.js';
import type {
  EngineAudio,
  EngineCapabilities,
  EngineHealth,
  Segment,
  TranscribeContext,
  TranscribeOptions,
  TranscriptionEngine,
  TranscriptionResult,
  Word,
} from '../engine.spec.js';
import {
  RivaCallError,
  RivaClient,
  type RivaRecognitionConfig,
  type RivaRecognizeResponse,
  type RivaSpeechContext,
} from './riva.client.js';
import { PCM_BYTES_PER_SEC, REQUEST_OVERHEAD_BYTES, parseRivaMetadata, type RivaConfig } from './riva.config.js';

/** The only audio the adapter sends: what the gateway's audio module produces. */
const SAMPLE_RATE = 16_000;
const CHANNELS = 1;
const BITS_PER_SAMPLE = 16;

/** Health probes must stay quick whatever RIVA_DEADLINE_MS allows a recognition. */
const HEALTH_DEADLINE_MS = 5_000;

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/**
 * Riva word boosting config: one SpeechContext per boost level, empty phrases and groups dropped.
 * `word_boosts` comes from a stored context (contexts module, `toWordBoosts`).
 */
export function toSpeechContexts(boosts: TranscribeOptions['word_boosts']): RivaSpeechContext[] {
  return (boosts ?? [])
    .map((g) => ({ phrases: g.phrases.map((p) => p.trim()).filter(Boolean), boost: g.boost }))
    .filter((g) => g.phrases.length > 0 && Number.isFinite(g.boost));
}

/**
 * Picks the BCP-47 code to send: Riva needs a region (`en-US`), the gateway's API also accepts
 * ISO-639-1 (`en`). A bare language takes the default when it is the same language, else the
 * first matching code the server reported (health probe), else it is sent as given.
 */
export function resolveRivaLanguage(requested: string | undefined, fallback: string, serverLanguages: readonly string[] = []): string {
  if (!requested) return fallback;
  if (requested.includes('-') || requested === 'multi') return requested;
  const lang = requested.toLowerCase();
  if (fallback.toLowerCase().split('-')[0] === lang) return fallback;
  return serverLanguages.find((l) => l.toLowerCase().split('-')[0] === lang) ?? requested;
}

/**
 * The RecognitionConfig the adapter sends: LINEAR_PCM 16 kHz mono, one alternative, word time
 * offsets on, automatic punctuation per RIVA_AUTOMATIC_PUNCTUATION, the request's model or
 * RIVA_MODEL ('' = server's choice), the language from resolveRivaLanguage, one SpeechContext per
 * boost level, and SpeakerDiarizationConfig only when diarization is requested (max_speaker_count
 * from the request, else RIVA_MAX_SPEAKERS).
 */
export function buildRecognitionConfig(options: TranscribeOptions, config: RivaConfig, serverLanguages: readonly string[] = []): RivaRecognitionConfig {
  const speechContexts = toSpeechContexts(options.word_boosts);
  return {
    encoding: 'LINEAR_PCM',
    sample_rate_hertz: SAMPLE_RATE,
    language_code: resolveRivaLanguage(options.language, config.RIVA_LANGUAGE, serverLanguages),
    max_alternatives: 1,
    audio_channel_count: CHANNELS,
    enable_word_time_offsets: true,
    enable_automatic_punctuation: config.RIVA_AUTOMATIC_PUNCTUATION === 'true',
    model: options.model ?? config.RIVA_MODEL ?? '',
    ...(speechContexts.length > 0 ? { speech_contexts: speechContexts } : {}),
    ...(options.diarization?.enabled
      ? { diarization_config: { enable_speaker_diarization: true, max_speaker_count: options.diarization.max_speakers ?? config.RIVA_MAX_SPEAKERS } }
      : {}),
  };
}

/** Riva confidences: proto3 cannot tell "not computed" (0) from a real 0, and some pipelines report values outside 0..1. */
function confidence01(value: number | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= 1 ? round3(value) : null;
}

/** The most frequent speaker among the words (ties go to the one heard first); null when none is attributed. */
function majoritySpeaker(words: Word[]): number | null {
  const counts = new Map<number, number>();
  for (const w of words) if (w.speaker_tag !== null) counts.set(w.speaker_tag, (counts.get(w.speaker_tag) ?? 0) + 1);
  let best: number | null = null;
  let bestCount = 0;
  for (const [tag, count] of counts) {
    if (count > bestCount) {
      best = tag;
      bestCount = count;
    }
  }
  return best;
}

/**
 * Normalizes a Riva RecognizeResponse into segments.
 *
 * - Each SpeechRecognitionResult's top alternative becomes one segment (text = its transcript,
 *   punctuated when automatic punctuation is on).
 * - WordInfo.start_time/end_time are integer **milliseconds** → float seconds, rounded to 1 ms,
 *   kept non-decreasing and within [0, durationSec].
 * - WordInfo.speaker_tag 1..N → 0..N-1 when diarization was requested; 0 (not attributed) or
 *   diarization off → null. A segment's speaker is the majority of its words'.
 * - A result without words spans from the previous segment's end to its `audio_processed`.
 *
 * @param durationSec seconds of audio sent.
 * @returns segments and the language the server reported (null when it reported none).
 * @throws Error when the response does not have the RecognizeResponse shape.
 */
export function mapRivaResponse(
  response: RivaRecognizeResponse,
  options: { durationSec: number; diarization: boolean },
): { segments: Segment[]; language: string | null } {
  if (!response || !Array.isArray(response.results)) throw new Error('RecognizeResponse without a results list');
  const segments: Segment[] = [];
  let language: string | null = null;
  let floor = 0;
  for (const result of response.results) {
    const alt = result.alternatives?.[0];
    if (!alt) continue;
    language ??= alt.language_code?.find((l) => l) ?? null;
    const words: Word[] = [];
    for (const w of alt.words ?? []) {
      const text = (w.word ?? '').trim();
      if (!text) continue;
      const start = clamp(round3((w.start_time ?? 0) / 1000), floor, options.durationSec);
      const end = clamp(round3((w.end_time ?? 0) / 1000), start, options.durationSec);
      floor = start;
      words.push({
        word: text,
        start,
        end,
        confidence: confidence01(w.confidence),
        speaker_tag: options.diarization && w.speaker_tag > 0 ? w.speaker_tag - 1 : null,
      });
    }
    const text = (alt.transcript ?? '').trim() || words.map((w) => w.word).join(' ');
    if (!text) continue;
    const previousEnd = segments.length > 0 ? segments[segments.length - 1].end : 0;
    const start = words.length > 0 ? words[0].start : clamp(previousEnd, floor, options.durationSec);
    const end =
      words.length > 0
        ? Math.max(...words.map((w) => w.end))
        : clamp(round3(result.audio_processed > 0 ? result.audio_processed : options.durationSec), start, options.durationSec);
    const wordConfidences = words.map((w) => w.confidence).filter((c): c is number => c !== null);
    segments.push({
      start,
      end,
      text,
      speaker_tag: majoritySpeaker(words),
      confidence: wordConfidences.length > 0 ? round3(wordConfidences.reduce((a, b) => a + b, 0) / wordConfidences.length) : confidence01(alt.confidence),
      words,
    });
  }
  return { segments, language };
}

/**
 * gRPC status → EngineError code; the code alone decides `retryable` (ENGINE_ERRORS). Retried:
 * the server is down or restarting (UNAVAILABLE), slow (DEADLINE_EXCEEDED), overloaded
 * (RESOURCE_EXHAUSTED, ABORTED), or failed inside (INTERNAL: Triton inference errors such as a
 * transient GPU out-of-memory; UNKNOWN: an unhandled server exception; DATA_LOSS) — the job's
 * retry limit bounds these. Not retried: the request or our credentials are wrong and will stay
 * wrong. A status missing here is ENGINE_INTERNAL.
 */
const STATUS_MAP: Readonly<Record<string, EngineErrorCode>> = {
  UNAVAILABLE: 'ENGINE_UNAVAILABLE',
  DEADLINE_EXCEEDED: 'ENGINE_TIMEOUT',
  RESOURCE_EXHAUSTED: 'ENGINE_OVERLOADED',
  ABORTED: 'ENGINE_OVERLOADED',
  INTERNAL: 'ENGINE_INTERNAL',
  UNKNOWN: 'ENGINE_INTERNAL',
  DATA_LOSS: 'ENGINE_INTERNAL',
  // CANCELLED not caused by our own signal: the server or a proxy dropped the call (shutdown, restart).
  CANCELLED: 'ENGINE_UNAVAILABLE',
  INVALID_ARGUMENT: 'ENGINE_REJECTED',
  FAILED_PRECONDITION: 'ENGINE_REJECTED',
  OUT_OF_RANGE: 'ENGINE_REJECTED',
  NOT_FOUND: 'ENGINE_REJECTED',
  ALREADY_EXISTS: 'ENGINE_REJECTED',
  UNIMPLEMENTED: 'ENGINE_REJECTED',
  UNAUTHENTICATED: 'ENGINE_UNAUTHORIZED',
  PERMISSION_DENIED: 'ENGINE_UNAUTHORIZED',
};

/** Whether a WAV is what the adapter sends as LINEAR_PCM: 16-bit PCM, mono, 16 kHz. */
function pcmFormatProblem(header: WavHeader): string | null {
  if (header.formatTag === 1 && header.bitsPerSample === BITS_PER_SAMPLE && header.channels === CHANNELS && header.sampleRate === SAMPLE_RATE) return null;
  return `expected PCM 16-bit mono 16000 Hz, got format ${header.formatTag}, ${header.bitsPerSample}-bit, ${header.channels} channel(s), ${header.sampleRate} Hz`;
}

/**
 * The `riva` engine (seed alias `asr`): NVIDIA Riva ASR — or a Riva ASR NIM such as parakeet —
 * over gRPC, through RivaClient.
 *
 * Each transcribe() call sends one piece of audio in one unary Recognize: a whole file up to
 * RIVA_CHUNKING_THRESHOLD seconds, or one chunk (RIVA_CHUNK_DURATION seconds) cut by the
 * gateway's chunker, which adds each chunk's offset afterwards. Word boosting (SpeechContext),
 * speaker diarization (SpeakerDiarizationConfig), word times and automatic punctuation are
 * Riva's own.
 *
 * Speakers across chunks: Riva diarizes each request on its own and exposes no speaker
 * embeddings, so speaker 0 of one chunk need not be speaker 0 of the next. Audio up to
 * RIVA_CHUNKING_THRESHOLD goes in one request and keeps consistent labels; raise the threshold
 * (up to max_duration_sec, about 34 minutes at 64 MiB) when consistent speakers matter more than
 * chunk-level retries.
 */
export class RivaEngine implements TranscriptionEngine {
  readonly id = 'riva';
  readonly displayName = 'NVIDIA Riva ASR (gRPC)';
  readonly capabilities: EngineCapabilities;
  private readonly client: RivaClient;
  /** Languages the server's models reported on the last successful health probe. */
  private serverLanguages: string[] = [];

  constructor(private readonly config: RivaConfig) {
    this.client = new RivaClient({
      uri: config.RIVA_URI,
      useSsl: config.RIVA_USE_SSL === 'true',
      caFile: config.RIVA_SSL_CA_FILE,
      metadata: parseRivaMetadata(config.RIVA_METADATA),
      deadlineMs: config.RIVA_DEADLINE_MS,
      maxSendMessageBytes: config.RIVA_MAX_SEND_MESSAGE_BYTES,
      maxReceiveMessageBytes: config.RIVA_MAX_RECEIVE_MESSAGE_BYTES,
    });
    this.capabilities = {
      diarization: true,
      word_boosting: true,
      word_timestamps: true,
      language_detection: false,
      // This adapter speaks Riva ASR (RivaSpeechRecognition), which transcribes only; Riva translates through its separate NMT service.
      translation: false,
      // RIVA_LANGUAGE until a health probe lists the deployed models' languages, which are added then.
      languages: [config.RIVA_LANGUAGE],
      models: config.RIVA_MODEL ? [config.RIVA_MODEL] : [],
      max_duration_sec: Math.floor((config.RIVA_MAX_SEND_MESSAGE_BYTES - REQUEST_OVERHEAD_BYTES) / PCM_BYTES_PER_SEC),
      chunking_threshold_sec: config.RIVA_CHUNKING_THRESHOLD,
      chunk_duration_sec: config.RIVA_CHUNK_DURATION,
    };
  }

  /** Closes the gRPC channel (tests and shutdown); later calls fail. */
  close(): void {
    this.client.close();
  }

  /**
   * grpc.health.v1.Health/Check (service '') must answer SERVING; then
   * GetRivaSpeechRecognitionConfig lists the deployed models, whose `language_code` parameters
   * give the languages (added to capabilities.languages, so that submit-time checks accept
   * them) and the models (capabilities.models, RIVA_MODEL first). A server without the health service (UNIMPLEMENTED) counts as up when the model list
   * answers. With RIVA_MODEL set, that model must be deployed. Never rejects.
   *
   * @returns details `{ssl, serving_status, models: string[], languages: string[]}`; the server
   *   address and gRPC status messages (which name hosts) are in `internal`.
   */
  async health(signal: AbortSignal): Promise<EngineHealth> {
    const call = { signal, deadlineMs: Math.min(HEALTH_DEADLINE_MS, this.config.RIVA_DEADLINE_MS) };
    const details: Record<string, unknown> = { ssl: this.config.RIVA_USE_SSL === 'true' };
    const internal: Record<string, unknown> = { uri: this.config.RIVA_URI };
    let serving: string;
    try {
      serving = await this.client.healthCheck('', call);
    } catch (err) {
      const e = err instanceof RivaCallError ? err : undefined;
      if (e?.status !== 'UNIMPLEMENTED') {
        return { available: false, message: `health check failed: ${e?.status ?? 'error'}`, details, internal: { ...internal, error: e ? e.details : String(err) } };
      }
      serving = 'UNIMPLEMENTED';
    }
    details.serving_status = serving;
    if (serving !== 'SERVING' && serving !== 'UNIMPLEMENTED') return { available: false, message: `Riva reports ${serving}`, details, internal };
    try {
      const models = await this.client.speechRecognitionConfig('', call);
      const names = [...new Set(models.map((m) => m.model_name).filter(Boolean))];
      const languages = [
        ...new Set(models.flatMap((m) => (m.parameters?.language_code ?? '').split(',').map((l) => l.trim()).filter(Boolean))),
      ];
      this.serverLanguages = languages;
      this.capabilities.languages = [...new Set([this.config.RIVA_LANGUAGE, ...languages])];
      // The deployed models become the ones a request may choose (and /engines lists); RIVA_MODEL,
      // the default, stays first. Without RIVA_MODEL the server picks when a request names none.
      if (names.length > 0) this.capabilities.models = [...new Set([...(this.config.RIVA_MODEL ? [this.config.RIVA_MODEL] : []), ...names])];
      Object.assign(details, { models: names, languages });
      if (this.config.RIVA_MODEL && names.length > 0 && !names.includes(this.config.RIVA_MODEL)) {
        return { available: false, message: `RIVA_MODEL '${this.config.RIVA_MODEL}' is not deployed; the server has: ${names.join(', ')}`, details, internal };
      }
      return { available: true, message: `${names.length} model(s) deployed`, details, internal };
    } catch (err) {
      const status = err instanceof RivaCallError ? err.status : 'error';
      const failure = { ...internal, error: err instanceof RivaCallError ? err.details : String(err) };
      if (serving === 'SERVING') return { available: true, message: `serving; the model list is not available (${status})`, details, internal: failure };
      return { available: false, message: `no health service and the model list failed (${status})`, details, internal: failure };
    }
  }

  /**
   * Transcribes one piece (a chunk, or a whole short file) with one Recognize call.
   *
   * @param audio 16 kHz mono s16le WAV; its samples are sent as LINEAR_PCM without the header
   *   (the header is read with readWavHeader, the samples only once they are known to fit).
   * @returns times in seconds from the start of this piece.
   * @throws EngineError (retryable by code, see ENGINE_ERRORS) — ENGINE_REJECTED (not a 16 kHz
   *   mono 16-bit WAV, larger than the send limit, or INVALID_ARGUMENT and other refusals),
   *   ENGINE_INTERNAL (the audio file cannot be read), ENGINE_CANCELLED on abort,
   *   ENGINE_BAD_RESPONSE, or UNAVAILABLE / TIMEOUT / OVERLOADED / INTERNAL (see STATUS_MAP).
   */
  async transcribe(audio: EngineAudio, options: TranscribeOptions, context: TranscribeContext): Promise<TranscriptionResult> {
    const warnings: string[] = [];
    if (options.prompt) warnings.push('Riva does not take a prompt; it was ignored (use a word-boosting context instead)');
    if (options.diarization?.enabled && options.diarization.min_speakers) {
      warnings.push('Riva takes only a maximum speaker count; min_speakers was ignored');
    }

    const pcm = await this.readPcm(audio.path);
    const diarization = options.diarization?.enabled === true;
    const config = buildRecognitionConfig(options, this.config, this.serverLanguages);
    const requestId = randomUUID();

    context.onProgress?.({ fraction: 0, stage: 'recognizing' });
    let response: RivaRecognizeResponse;
    try {
      response = await this.client.recognize({ config, audio: pcm, id: { value: requestId } }, { signal: context.signal });
    } catch (err) {
      throw this.toEngineError(err, context.signal, requestId);
    }

    const durationSec = pcm.length / PCM_BYTES_PER_SEC;
    let mapped: ReturnType<typeof mapRivaResponse>;
    try {
      mapped = mapRivaResponse(response, { durationSec, diarization });
    } catch (err) {
      throw new EngineError('ENGINE_BAD_RESPONSE', `Riva answered with an unexpected response: ${err instanceof Error ? err.message : String(err)}`, this.id, {
        details: { request_id: requestId, uri: this.config.RIVA_URI },
        cause: err,
      });
    }
    if (mapped.segments.length === 0) warnings.push('Riva recognised no speech in this audio');
    context.onProgress?.({ fraction: 1, stage: 'recognizing' });
    return {
      text: mapped.segments.map((s) => s.text).join(' '),
      language: mapped.language ?? config.language_code,
      duration_sec: durationSec,
      segments: mapped.segments,
      warnings,
      engine: { id: this.id, model: config.model || null },
    };
  }

  /**
   * The s16le samples of the WAV at `file`, checked to be 16 kHz mono 16-bit PCM and to fit one
   * request before they are read.
   *
   * @throws EngineError ENGINE_REJECTED (wrong format, too long), ENGINE_INTERNAL (unreadable file).
   */
  private async readPcm(file: string): Promise<Buffer> {
    let header: WavHeader;
    try {
      header = await readWavHeader(file);
    } catch (err) {
      if (err instanceof AudioError) {
        throw new EngineError('ENGINE_REJECTED', `the audio cannot be sent to Riva: ${err.message}`, this.id, { details: { path: file }, cause: err });
      }
      throw this.unreadable(file, err);
    }
    const problem = pcmFormatProblem(header);
    if (problem) throw new EngineError('ENGINE_REJECTED', `the audio cannot be sent to Riva: ${problem}`, this.id, { details: { path: file } });
    const limit = this.config.RIVA_MAX_SEND_MESSAGE_BYTES - REQUEST_OVERHEAD_BYTES;
    if (header.dataBytes > limit) {
      throw new EngineError(
        'ENGINE_REJECTED',
        `${round3(header.dataBytes / PCM_BYTES_PER_SEC)} s of audio (${header.dataBytes} bytes) exceeds what one Riva request may carry (${limit} bytes, RIVA_MAX_SEND_MESSAGE_BYTES); it must be chunked`,
        this.id,
        { details: { audio_bytes: header.dataBytes, max_audio_bytes: limit } },
      );
    }
    try {
      const handle = await open(file, 'r');
      try {
        const pcm = Buffer.alloc(header.dataBytes);
        const { bytesRead } = await handle.read(pcm, 0, pcm.length, header.dataOffset);
        return pcm.subarray(0, bytesRead - (bytesRead % header.blockAlign));
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw this.unreadable(file, err);
    }
  }

  /** The gateway's own WAV is gone or unreadable: a local fault, retried (another attempt re-decodes it). */
  private unreadable(file: string, err: unknown): EngineError {
    return new EngineError('ENGINE_INTERNAL', 'the audio to send to Riva cannot be read', this.id, {
      details: { path: file, error: err instanceof Error ? err.message : String(err) },
      cause: err,
    });
  }

  /**
   * A failed gRPC call. The public message names the method and the status; the server's status
   * message (`grpc_details`: it may name hosts, models or paths) and the server address stay in
   * `details`.
   */
  private toEngineError(err: unknown, signal: AbortSignal, requestId: string): EngineError {
    if (!(err instanceof RivaCallError)) {
      return new EngineError('ENGINE_INTERNAL', 'Riva call failed', this.id, {
        details: { request_id: requestId, uri: this.config.RIVA_URI, error: err instanceof Error ? err.message : String(err) },
        cause: err,
      });
    }
    const details = { grpc_code: err.code, grpc_status: err.status, grpc_details: err.details, method: err.method, uri: this.config.RIVA_URI, request_id: requestId };
    if (signal.aborted) return new EngineError('ENGINE_CANCELLED', 'Riva call cancelled', this.id, { details, cause: err });
    // grpc-js reports a message over our own send/receive limit as RESOURCE_EXHAUSTED too; trying again cannot help.
    if (err.status === 'RESOURCE_EXHAUSTED' && /larger than max/i.test(err.details)) {
      return new EngineError('ENGINE_REJECTED', 'a Riva message is over the gRPC size limit (RIVA_MAX_SEND_MESSAGE_BYTES / RIVA_MAX_RECEIVE_MESSAGE_BYTES)', this.id, {
        upstreamStatus: err.status,
        details,
        cause: err,
      });
    }
    const code = STATUS_MAP[err.status] ?? 'ENGINE_INTERNAL';
    return new EngineError(code, `Riva ${err.method} failed with gRPC status ${err.status}`, this.id, { upstreamStatus: err.status, details, cause: err });
  }
}
