/**
 * The transcription engine spec (version 1): what every engine adapter implements and the one
 * normalized result every engine returns, whatever its wire protocol.
 *
 * Units: every time is float **seconds** from the start of the audio the engine received;
 * confidences are 0..1 or `null` when the engine gives none; `speaker_tag` is a 0-based
 * integer or `null` when the engine did not attribute speakers.
 */

/** Every engine id the project knows; mirrors the Postgres enum `transcription_engine`. */
export const ENGINE_IDS = ['riva', 'whisperx', 'whisper-rocm', 'pocketsphinx', 'openai'] as const;
export type KnownEngineId = (typeof ENGINE_IDS)[number];

/** Seed names accepted in URLs and request bodies, mapped to the engine id. */
export const ENGINE_ALIASES: Readonly<Record<string, KnownEngineId>> = { asr: 'riva' };

/** What an engine can do; reported by `GET /api/transcribe/jobs/engines`. */
export interface EngineCapabilities {
  /** Attributes words to speakers (speaker_tag) on single-channel audio. */
  diarization: boolean;
  /** Accepts phrase lists with boosts (Riva SpeechContext). */
  word_boosting: boolean;
  /** Returns start/end times per word. */
  word_timestamps: boolean;
  /** Detects the spoken language when none is given. */
  language_detection: boolean;
  /**
   * Translates speech in any language it knows into English text (Whisper's `translate` task):
   * accepts `task: 'translate'`. Checked at submit time (checkEngineTask).
   */
  translation: boolean;
  /**
   * Supported language codes (BCP-47 or ISO-639-1, as the engine names them). A request's
   * language is checked against them at submit time (checkEngineOptions); empty = not known,
   * any language is passed on.
   */
  languages: string[];
  /**
   * Model names a request may choose; the first is the default. Checked at submit time
   * (checkEngineOptions); empty = not selectable per request, any model is passed on.
   */
  models: string[];
  /** Longest audio, in seconds, the engine takes in one call; longer audio must be chunked. */
  max_duration_sec: number | null;
  /** Audio longer than this (seconds) goes through the gateway's chunker for this engine; null = the gateway default (CHUNKING_THRESHOLD). */
  chunking_threshold_sec: number | null;
  /** Target chunk length (seconds) for this engine when chunking; null = the gateway default (CHUNK_DURATION). */
  chunk_duration_sec: number | null;
  /**
   * True when the engine must receive the whole recording in one call (e.g. WhisperX diarizes the
   * whole file so speaker labels stay consistent): the gateway never chunks audio for it.
   */
  whole_file?: boolean;
}

/** One recognised word. */
export interface Word {
  word: string;
  /** Seconds. */
  start: number;
  /** Seconds. */
  end: number;
  /** 0..1, or null when the engine gives none. */
  confidence: number | null;
  /** 0-based speaker, or null without diarization / multichannel. */
  speaker_tag: number | null;
  /** True when the engine returned the word without times and the gateway interpolated them. */
  interpolated?: boolean;
}

/** One segment (utterance): a run of words, usually bounded by pauses or a speaker change. */
export interface Segment {
  /** Seconds. */
  start: number;
  /** Seconds. */
  end: number;
  text: string;
  speaker_tag: number | null;
  /** 0..1 (mean of the word confidences, or the engine's own), or null. */
  confidence: number | null;
  words: Word[];
}

/** The normalized result every engine returns. */
export interface TranscriptionResult {
  /** Full text, segments joined in order. */
  text: string;
  /** Language code the engine used or detected, or null when unknown. */
  language: string | null;
  /** Duration of the audio the engine received, seconds. */
  duration_sec: number;
  segments: Segment[];
  /** Options the engine ignored or degraded behaviour, in plain words (never an error). */
  warnings: string[];
  /** Which engine (and model) produced the result. */
  engine: { id: string; model: string | null };
}

/**
 * The audio handed to an engine: always a 16 kHz, mono, 16-bit PCM WAV file on local disk,
 * produced by the gateway's audio module.
 */
export interface EngineAudio {
  /** Absolute path of the 16 kHz mono s16le WAV file. */
  path: string;
  /** Seconds. */
  duration_sec: number;
  /** Peak level in dBFS measured while decoding (-91 = digital silence); lets engines tell silence from failure. */
  max_volume_db: number | null;
}

/** What the engine is asked to produce from the speech. */
export const ENGINE_TASKS = ['transcribe', 'translate'] as const;
/**
 * `transcribe`: text in the spoken language. `translate`: English text, whatever the spoken
 * language (Whisper's second task; only engines with `capabilities.translation`).
 */
export type EngineTask = (typeof ENGINE_TASKS)[number];

/** Request options, normalized from the HTTP layer. Engines ignore what they cannot do and say so in `warnings`. */
export interface TranscribeOptions {
  /**
   * `translate`: English text (the result's `language` is `en`); absent or `transcribe`: text in
   * the spoken language. Engines without `capabilities.translation` never receive `translate`
   * (refused at submit).
   */
  task?: EngineTask;
  /** Language code (of the speech, also when translating), or undefined for the engine default / auto-detection. */
  language?: string;
  /** Model name, or undefined for the engine default. */
  model?: string;
  /** Speaker diarization request. */
  diarization?: { enabled: boolean; min_speakers?: number; max_speakers?: number };
  /** Phrases to boost (word boosting), one group per boost level. */
  word_boosts?: { phrases: string[]; boost: number }[];
  /** Text that biases recognition (Whisper `prompt` / `initial_prompt`). */
  prompt?: string;
}

/** Progress report from inside an engine call. */
export interface EngineProgress {
  /** 0..1 of this engine call. */
  fraction: number;
  /** Short stage name, e.g. `uploading`, `recognizing`, `aligning`. */
  stage?: string;
}

/** Per-call context: cancellation and progress. */
export interface TranscribeContext {
  /** Aborted when the job is cancelled or the worker shuts down; engines must stop promptly. */
  signal: AbortSignal;
  onProgress?: (progress: EngineProgress) => void;
}

/**
 * Result of a health probe. `message` and `details` are shown to clients on `/engines`: they
 * never carry URLs, hosts, file paths or raw upstream text, which go to `internal`.
 */
export interface EngineHealth {
  available: boolean;
  /** Why the engine is unavailable, or a short status line, in the gateway's words. */
  message?: string;
  /** Engine-reported facts safe to show (model loaded, device, version, deployed models…). */
  details?: Record<string, unknown>;
  /** Private diagnostics (URLs, paths, network and upstream error texts): logged when availability changes, never shown. */
  internal?: Record<string, unknown>;
}

/** What every engine adapter implements. */
export interface TranscriptionEngine {
  readonly id: string;
  readonly displayName: string;
  readonly capabilities: EngineCapabilities;
  /**
   * Most chunk calls in flight at once across every worker (e.g. the number of GPU service
   * replicas behind the engine); undefined/null = bounded only by the workers' own concurrency.
   */
  readonly concurrency?: number | null;
  /**
   * Probes the engine. Must resolve (never reject) within a reasonable time; the caller also
   * applies a timeout through `signal`.
   */
  health(signal: AbortSignal): Promise<EngineHealth>;
  /**
   * Transcribes one piece of 16 kHz mono audio.
   *
   * @throws EngineError (and only EngineError) on failure; its code decides `retryable` (ENGINE_ERRORS).
   */
  transcribe(audio: EngineAudio, options: TranscribeOptions, context: TranscribeContext): Promise<TranscriptionResult>;
}

/** DI token under which every engine adapter is provided (multi-provider style, collected by the registry). */
export const TRANSCRIPTION_ENGINES = Symbol('TRANSCRIPTION_ENGINES');
