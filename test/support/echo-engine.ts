import { readFile } from 'node:fs/promises';
import { readWavHeader } from '../../src/audio/wav.js';
import type { EngineAudio, EngineCapabilities, EngineHealth, Segment, TranscribeContext, TranscribeOptions, TranscriptionEngine, TranscriptionResult } from '../../src/engines/engine.spec.js';

/** A stretch of non-zero samples in the audio an engine received, seconds from its start. */
export interface Stretch {
  start: number;
  end: number;
}

/**
 * Stretches of non-zero samples in 16-bit PCM: a run of at least `minZeroSec` of exact zeros
 * separates two stretches (shorter runs, which real audio has by chance, do not). Times are exact
 * sample times: sample i starts at i / sampleRate, a stretch ends after its last non-zero sample.
 */
export function nonZeroStretches(samples: Int16Array, sampleRate: number, minZeroSec = 0.2): Stretch[] {
  const minZeros = Math.round(minZeroSec * sampleRate);
  const out: Stretch[] = [];
  let start = -1;
  let lastNonZero = -1;
  for (let i = 0; i < samples.length; i++) {
    if (samples[i] === 0) continue;
    if (start >= 0 && i - lastNonZero - 1 >= minZeros) {
      out.push({ start: start / sampleRate, end: (lastNonZero + 1) / sampleRate });
      start = -1;
    }
    if (start < 0) start = i;
    lastNonZero = i;
  }
  if (start >= 0) out.push({ start: start / sampleRate, end: (lastNonZero + 1) / sampleRate });
  return out;
}

/** Samples of a 16 kHz mono s16le WAV file (the format every engine receives), and its rate in Hz. */
export async function readPcm(path: string): Promise<{ samples: Int16Array; sampleRate: number }> {
  const header = await readWavHeader(path);
  const bytes = await readFile(path);
  const data = bytes.subarray(header.dataOffset, header.dataOffset + Math.min(header.dataBytes, bytes.length - header.dataOffset));
  // Copy into an aligned buffer: the data chunk may start at an odd offset of the file buffer.
  const aligned = new Int16Array(Math.floor(data.length / 2));
  new Uint8Array(aligned.buffer).set(data.subarray(0, aligned.length * 2));
  return { samples: aligned, sampleRate: header.sampleRate };
}

/**
 * A test engine that "hears" sample values rather than speech: for the 16 kHz WAV it receives it
 * returns one word per stretch of non-zero samples (nonZeroStretches), at the exact sample times
 * of that stretch in ITS audio, one segment per word. Recordings built from clips separated by
 * digital silence then tell exactly where the gateway's chunking and time mapping put each clip.
 * Counts calls and keeps the audio duration of each call (seconds).
 */
export class EchoEngine implements TranscriptionEngine {
  calls = 0;
  /** Duration of the audio each call received, seconds, in call order. */
  readonly received: number[] = [];
  readonly displayName = 'non-zero stretch echo (tests)';
  readonly capabilities: EngineCapabilities = {
    diarization: false,
    word_boosting: false,
    word_timestamps: true,
    language_detection: false,
    translation: false,
    languages: [],
    models: [],
    max_duration_sec: null,
    chunking_threshold_sec: null,
    chunk_duration_sec: null,
  };

  /** @param id an id of the `transcription_engine` enum (ENGINE_IDS): jobs store it in Postgres. */
  constructor(readonly id = 'pocketsphinx', private readonly minZeroSec = 0.2) {}

  health(): Promise<EngineHealth> {
    return Promise.resolve({ available: true });
  }

  async transcribe(audio: EngineAudio, _options: TranscribeOptions, context: TranscribeContext): Promise<TranscriptionResult> {
    this.calls++;
    context.signal.throwIfAborted();
    const { samples, sampleRate } = await readPcm(audio.path);
    this.received.push(samples.length / sampleRate);
    const segments: Segment[] = nonZeroStretches(samples, sampleRate, this.minZeroSec).map((s, i) => {
      const word = `w${i}`;
      return { start: s.start, end: s.end, text: word, speaker_tag: null, confidence: 1, words: [{ word, start: s.start, end: s.end, confidence: 1, speaker_tag: null }] };
    });
    return { text: segments.map((s) => s.text).join(' '), language: null, duration_sec: samples.length / sampleRate, segments, warnings: [], engine: { id: this.id, model: null } };
  }
}
