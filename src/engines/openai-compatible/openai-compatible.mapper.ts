import type { Segment, Word } from '../engine.spec.js';
import { languageCodeFromReport } from '../whisper-languages.js';

/** One `verbose_json` segment (OpenAI transcription API; times are float seconds). */
export interface VerboseJsonSegment {
  id?: number;
  seek?: number;
  start: number;
  end: number;
  text: string;
  tokens?: number[];
  temperature?: number;
  /** Mean token log-probability of the segment (natural log, ≤ 0). */
  avg_logprob?: number;
  compression_ratio?: number;
  no_speech_prob?: number;
  /** Not OpenAI's shape: whisper.cpp's server nests each segment's words here instead of a top-level `words`. */
  words?: VerboseJsonWord[];
}

/** One `verbose_json` word (float seconds). OpenAI and openai-whisper servers send no score; faster-whisper servers (speaches) add `probability`. */
export interface VerboseJsonWord {
  word: string;
  start: number;
  end: number;
  probability?: number;
}

/** `response_format=verbose_json` body of `POST /v1/audio/transcriptions`. */
export interface VerboseJson {
  task?: string;
  /** Whisper's full English language name, e.g. `english`. */
  language?: string;
  /** Seconds of audio the server decoded. */
  duration?: number;
  text: string;
  /** Present unless only `word` granularity was requested. */
  segments?: VerboseJsonSegment[];
  /** Present when `word` granularity was requested. */
  words?: VerboseJsonWord[];
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks that a parsed body has the `verbose_json` shape the mapper relies on.
 *
 * @returns null when it does, otherwise the first violation in plain words.
 */
export function verboseJsonViolation(body: unknown): string | null {
  if (!isRecord(body)) return 'the body is not a JSON object';
  if (typeof body.text !== 'string') return "'text' is missing or not a string";
  if (body.duration !== undefined && body.duration !== null && !isFiniteNumber(body.duration)) return "'duration' is not a number";
  if (body.language !== undefined && body.language !== null && typeof body.language !== 'string') return "'language' is not a string";
  if (body.segments !== undefined && body.segments !== null) {
    if (!Array.isArray(body.segments)) return "'segments' is not an array";
    for (const [i, s] of body.segments.entries()) {
      if (!isRecord(s) || !isFiniteNumber(s.start) || !isFiniteNumber(s.end) || typeof s.text !== 'string') {
        return `segments[${i}] lacks numeric start/end or string text`;
      }
      const nested = wordsViolation(s.words, `segments[${i}].words`);
      if (nested) return nested;
    }
  }
  return wordsViolation(body.words, 'words');
}

function wordsViolation(words: unknown, where: string): string | null {
  if (words === undefined || words === null) return null;
  if (!Array.isArray(words)) return `'${where}' is not an array`;
  for (const [i, w] of words.entries()) {
    if (!isRecord(w) || !isFiniteNumber(w.start) || !isFiniteNumber(w.end) || typeof w.word !== 'string') {
      return `${where}[${i}] lacks numeric start/end or string word`;
    }
  }
  return null;
}

/** Rounds seconds to whole milliseconds (float seconds stay the unit). */
const toMs = (sec: number) => Math.round(sec * 1000) / 1000;
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/**
 * Segment confidence from Whisper's `avg_logprob` (mean natural-log probability of the segment's
 * tokens): `exp(avg_logprob)`, the geometric mean of the token probabilities, clamped to 0..1.
 * Null when the server gives none.
 */
export function segmentConfidence(avgLogprob: unknown): number | null {
  if (!isFiniteNumber(avgLogprob)) return null;
  return Math.round(clamp(Math.exp(avgLogprob), 0, 1) * 10_000) / 10_000;
}

/** Puts [start, end] pairs in order: rounded to ms, within [0, duration], each time ≥ the one before (no overlaps). */
function orderTimes<T extends { start: number; end: number }>(items: T[], duration: number): void {
  let floor = 0;
  for (const item of items) {
    item.start = Math.max(floor, clamp(toMs(item.start), 0, duration));
    item.end = Math.max(item.start, clamp(toMs(item.end), 0, duration));
    floor = item.end;
  }
}

/** Index of the segment for a word: the one whose [start, end) holds its midpoint, else the nearest. */
function segmentIndexFor(mid: number, segments: { start: number; end: number }[]): number {
  let best = 0;
  let bestDistance = Infinity;
  for (const [i, s] of segments.entries()) {
    if (mid >= s.start && mid < s.end) return i;
    const distance = mid < s.start ? s.start - mid : mid - s.end;
    if (distance < bestDistance) {
      bestDistance = distance;
      best = i;
    }
  }
  return best;
}

/** What mapVerboseJson produces; the engine adds language, warnings and engine metadata. */
export interface MappedTranscript {
  text: string;
  segments: Segment[];
  /** Language code converted from the response, or null when it has none. */
  language: string | null;
  /** Seconds: the response's `duration`, else the audio's. */
  duration_sec: number;
  /** Facts about the response worth a warning (no segments, no word times). */
  notes: string[];
}

/**
 * Maps an OpenAI `verbose_json` body (already checked by verboseJsonViolation) to normalized
 * segments and words.
 *
 * - Times stay float seconds, rounded to ms, clamped to [0, duration] and kept non-decreasing.
 * - Words (top-level `words`, or per-segment `words` when a server nests them) are assigned to the segment whose [start, end) holds their
 *   midpoint; a word outside every segment goes to the nearest one. A word is then clamped
 *   into its segment: Whisper derives segment bounds from the same word alignment, so this
 *   moves a word by milliseconds at most, and consumers can rely on words lying inside segments.
 * - Word confidence is the word's `probability` when the server sends one (faster-whisper
 *   servers do), else null; segment confidence is segmentConfidence(avg_logprob).
 * - Without segments but with words, one segment spans the words; with neither, one segment
 *   spans the audio (both noted).
 * - Speakers are never attributed (speaker_tag null): the API has no diarization.
 *
 * @param audioDurationSec duration of the 16 kHz mono audio that was sent, seconds.
 * @param expect.wordTimes false when the request could not ask for word timestamps (the
 *   translations endpoint): their absence is then no news and not noted.
 */
export function mapVerboseJson(body: VerboseJson, audioDurationSec: number, expect: { wordTimes: boolean } = { wordTimes: true }): MappedTranscript {
  const notes: string[] = [];
  const duration = toMs(isFiniteNumber(body.duration) && body.duration > 0 ? body.duration : audioDurationSec);
  const text = body.text.trim();

  // OpenAI's top-level words; else the per-segment words some servers (whisper.cpp) send instead.
  const rawWords = body.words ?? (body.segments ?? []).flatMap((s) => s.words ?? []);
  const words: Word[] = rawWords
    .map((w) => ({
      word: w.word.trim(),
      start: w.start,
      end: w.end,
      confidence: isFiniteNumber(w.probability) ? clamp(w.probability, 0, 1) : null,
      speaker_tag: null,
    }))
    .filter((w) => w.word !== '')
    .sort((a, b) => a.start - b.start || a.end - b.end);
  orderTimes(words, duration);

  let segments: Segment[] = (body.segments ?? [])
    .map((s) => ({
      start: s.start,
      end: s.end,
      text: s.text.trim(),
      speaker_tag: null,
      confidence: segmentConfidence(s.avg_logprob),
      words: [] as Word[],
    }))
    .sort((a, b) => a.start - b.start || a.end - b.end);
  orderTimes(segments, duration);

  if (segments.length === 0 && (words.length > 0 || text !== '')) {
    notes.push('the engine returned no segments; one segment spans the whole transcript');
    segments = [{
      start: words[0]?.start ?? 0,
      end: words[words.length - 1]?.end ?? duration,
      text,
      speaker_tag: null,
      confidence: null,
      words: [],
    }];
  }
  if (words.length === 0 && text !== '' && expect.wordTimes) notes.push('the engine returned no word timestamps');

  for (const word of words) {
    const segment = segments[segmentIndexFor((word.start + word.end) / 2, segments)];
    word.start = clamp(word.start, segment.start, segment.end);
    word.end = clamp(word.end, word.start, segment.end);
    segment.words.push(word);
  }
  // Whisper occasionally emits an empty segment (a lone timestamp pair): it carries nothing.
  segments = segments.filter((s) => s.text !== '' || s.words.length > 0);

  return {
    text: text !== '' ? text : segments.map((s) => s.text).join(' ').trim(),
    segments,
    language: languageCodeFromReport(body.language),
    duration_sec: duration,
    notes,
  };
}
