import { access } from 'node:fs/promises';
import path from 'node:path';
import { readWavHeader } from '../../audio/wav.js';
import { ProcessStartError, resolveExecutable, runProcess } from '../../common/process.js';
import { EngineError } from '../engine.error.js';
import type {
  EngineAudio,
  EngineCapabilities,
  EngineHealth,
  TranscribeContext,
  TranscribeOptions,
  TranscriptionEngine,
  TranscriptionResult,
} from '../engine.spec.js';
import type { PocketsphinxConfig } from './pocketsphinx.config.js';
import { parsePocketsphinxOutput } from './pocketsphinx.parser.js';

/** Where Debian's `pocketsphinx-en-us` package installs the default US English model. */
const DEBIAN_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';

/**
 * Audio whose peak stays below this level (dBFS) counts as silent: pocketsphinx legitimately
 * finds no words in it.
 */
const SILENCE_PEAK_DB = -50;

/**
 * Decoder arguments passed on every call, on top of the model's own settings (none today). A
 * setting belongs here only if, tuned on half of the fixtures, it lowers the pooled WER on both
 * halves without raising it on any fixture (bench/pocketsphinx-wer.ts, bench/README.md). Tried on
 * 2026-12-04 and not kept: `-wip 0.2` (held-back half 0.608 → 0.582, but the tuning half unchanged
 * and jfk 0.64 → 0.73); `-lw` 4, 8 and 10 with the later passes' weights, and those weights alone
 * (worse); wider beams, `-cmn live` (no change); `-bestpath no`, `-remove_noise no`,
 * `-remove_silence no` (worse); vocal-tract warping `-warp_params` 1.05 / 1.1 (better on some
 * clips, worse on others).
 */
export const POCKETSPHINX_DECODER_ARGS: readonly string[] = [];

/**
 * True when `file` is the 16 kHz mono 16-bit PCM WAV pocketsphinx reads. pocketsphinx prints
 * nothing, and exits 0, both on such audio without words (noise, a tone) and on input in another
 * format: only the header tells a result ("no speech") from a failure.
 */
async function isEngineWav(file: string): Promise<boolean> {
  try {
    const h = await readWavHeader(file);
    return h.formatTag === 1 && h.sampleRate === 16_000 && h.channels === 1 && h.bitsPerSample === 16;
  } catch {
    return false;
  }
}

/**
 * The embedded CPU engine: CMU pocketsphinx (Debian `pocketsphinx`, 5prealpha) run as a child
 * process per call — `pocketsphinx_continuous -infile F -time yes`. It always receives the
 * gateway's 16 kHz mono WAV. Word times and posteriors come from its token lines (see
 * parsePocketsphinxOutput). No diarization, no word boosting, US English only by default.
 */
export class PocketsphinxEngine implements TranscriptionEngine {
  readonly id = 'pocketsphinx';
  readonly displayName = 'CMU pocketsphinx (embedded, CPU)';
  readonly capabilities: EngineCapabilities;

  private readonly decoderArgs: readonly string[];

  /**
   * @param options.decoderArgs pocketsphinx_continuous arguments replacing POCKETSPHINX_DECODER_ARGS
   *   (the accuracy benchmark compares settings with it); never built from a request.
   */
  constructor(private readonly config: PocketsphinxConfig, options: { decoderArgs?: readonly string[] } = {}) {
    this.decoderArgs = options.decoderArgs ?? POCKETSPHINX_DECODER_ARGS;
    this.capabilities = {
      diarization: false,
      word_boosting: false,
      word_timestamps: true,
      language_detection: false,
      // A phonetic English decoder: it can only transcribe what is spoken.
      translation: false,
      languages: [config.POCKETSPHINX_LANGUAGE],
      models: [config.POCKETSPHINX_HMM ? path.basename(config.POCKETSPHINX_HMM) : 'en-us'],
      max_duration_sec: null,
      chunking_threshold_sec: null,
      chunk_duration_sec: null,
    };
  }

  private modelArgs(): string[] {
    const args: string[] = [];
    if (this.config.POCKETSPHINX_HMM) args.push('-hmm', this.config.POCKETSPHINX_HMM);
    if (this.config.POCKETSPHINX_LM) args.push('-lm', this.config.POCKETSPHINX_LM);
    if (this.config.POCKETSPHINX_DICT) args.push('-dict', this.config.POCKETSPHINX_DICT);
    return args;
  }

  /**
   * Available when the binary is executable and the acoustic model directory exists (no decode, so
   * probes stay cheap). Paths (binary, model directory) are in `internal`: `/engines` shows only
   * the model's name.
   */
  async health(): Promise<EngineHealth> {
    const binary = await resolveExecutable(this.config.POCKETSPHINX_PATH);
    if (!binary) {
      return {
        available: false,
        message: 'the pocketsphinx_continuous binary (POCKETSPHINX_PATH) was not found; install the Debian packages pocketsphinx and pocketsphinx-en-us',
        internal: { path: this.config.POCKETSPHINX_PATH },
      };
    }
    const hmm = this.config.POCKETSPHINX_HMM ?? path.join(DEBIAN_MODEL_DIR, 'en-us');
    try {
      await access(path.join(hmm, 'mdef'));
    } catch {
      return { available: false, message: 'the acoustic model (POCKETSPHINX_HMM, or the pocketsphinx-en-us package) was not found', internal: { binary, acoustic_model: hmm } };
    }
    return { available: true, details: { model: this.capabilities.models[0] ?? null }, internal: { binary, acoustic_model: hmm } };
  }

  /**
   * @param audio 16 kHz mono s16le WAV (the gateway's normalized audio).
   * @param options `language` outside capabilities.languages (`en-US`, POCKETSPHINX_LANGUAGE) and
   *   `model` other than the configured one are refused at submit time (checkEngineOptions); here
   *   they only become warnings.
   * @throws EngineError (retryable by code, see ENGINE_ERRORS) ENGINE_UNAVAILABLE (binary missing:
   *   retried, since another worker may have it), ENGINE_CANCELLED on abort, ENGINE_INTERNAL on a
   *   non-zero exit, ENGINE_EMPTY_OUTPUT when audio that is not 16 kHz mono 16-bit PCM gives no
   *   output. Valid audio without words (noise, a tone) gives an empty transcript with a warning.
   */
  async transcribe(audio: EngineAudio, options: TranscribeOptions, context: TranscribeContext): Promise<TranscriptionResult> {
    const warnings: string[] = [];
    if (options.language && !options.language.toLowerCase().startsWith('en')) {
      warnings.push(`pocketsphinx has only its US English model; language '${options.language}' was ignored`);
    }
    if (options.diarization?.enabled) warnings.push('pocketsphinx does not do speaker diarization; speakers were not attributed');
    if (options.word_boosts?.length) warnings.push('pocketsphinx does not support word boosting; boost phrases were ignored');
    if (options.prompt) warnings.push('pocketsphinx does not take a prompt; it was ignored');
    if (options.model && options.model !== this.capabilities.models[0]) {
      warnings.push(`pocketsphinx model selection per request is not supported; '${options.model}' was ignored`);
    }

    const args = ['-infile', audio.path, '-time', 'yes', ...this.modelArgs(), ...this.decoderArgs];
    let result;
    try {
      result = await runProcess(this.config.POCKETSPHINX_PATH, args, {
        signal: context.signal,
        onStdoutLine: (line) => {
          // Token lines carry absolute times: the latest end time over the duration is real progress.
          const end = Number(line.trim().split(/\s+/)[2]);
          if (context.onProgress && Number.isFinite(end) && audio.duration_sec > 0) {
            context.onProgress({ fraction: Math.min(1, end / audio.duration_sec), stage: 'recognizing' });
          }
        },
      });
    } catch (err) {
      if (err instanceof ProcessStartError) {
        throw new EngineError('ENGINE_UNAVAILABLE', `pocketsphinx cannot be started (${err.errno ?? 'unknown error'}); is POCKETSPHINX_PATH right?`, this.id, {
          details: { command: err.command, errno: err.errno },
          cause: err,
        });
      }
      if (context.signal.aborted) throw new EngineError('ENGINE_CANCELLED', 'pocketsphinx call cancelled', this.id, { cause: err });
      throw err;
    }
    if (result.code !== 0) {
      throw new EngineError('ENGINE_INTERNAL', `pocketsphinx exited with ${result.code ?? result.signal}`, this.id, {
        details: { exit_code: result.code, signal: result.signal, stderr_tail: result.stderr.slice(-2000), audio_path: audio.path },
      });
    }
    const segments = parsePocketsphinxOutput(result.stdout);
    if (segments.length === 0) {
      const silent = audio.max_volume_db !== null && audio.max_volume_db < SILENCE_PEAK_DB;
      if (silent) warnings.push('the audio is silent: no speech found');
      else if (await isEngineWav(audio.path)) {
        // Valid input and no words: noise, music, a tone or a clip too short for a word. Not a failure.
        warnings.push(`no speech recognized: the audio (peak ${audio.max_volume_db ?? 'unknown'} dBFS) holds no words pocketsphinx could find`);
      } else {
        throw new EngineError(
          'ENGINE_EMPTY_OUTPUT',
          'pocketsphinx produced no output: the audio it was given is not 16 kHz mono 16-bit PCM',
          this.id,
          { details: { max_volume_db: audio.max_volume_db, stderr_tail: result.stderr.slice(-2000), audio_path: audio.path } },
        );
      }
    }
    return {
      text: segments.map((s) => s.text).join(' '),
      language: this.config.POCKETSPHINX_LANGUAGE,
      duration_sec: audio.duration_sec,
      segments,
      warnings,
      engine: { id: this.id, model: this.capabilities.models[0] ?? null },
    };
  }
}
