import type { Segment, TranscriptionResult, Word } from '../../engines/engine.spec.js';
import type { SpeechRegion } from './speech-chunks.js';

/**
 * Guards against engine hallucinations on audio that still contains non-speech (a whole-file
 * engine, or VAD-based chunking turned off): Whisper-family models invent text in long silence or
 * noise ("Thank you for watching.") and can fall into loops that repeat one phrase. Times are float
 * seconds on the same timeline as the VAD regions (the recording's).
 */

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function meanConfidence(words: Word[]): number | null {
  const known = words.map((w) => w.confidence).filter((c): c is number => c !== null);
  return known.length ? round3(known.reduce((a, b) => a + b, 0) / known.length) : null;
}

/** What `dropWordsOutsideSpeech` did. */
export interface NonSpeechFilterResult {
  /** The result without the removed words and segments; `warning` is already in its `warnings`. */
  result: TranscriptionResult;
  /** Words removed. */
  removedWords: number;
  /** Segments without word times removed as a whole (segments emptied by word removal are not counted here). */
  removedSegments: number;
  /** e.g. "removed 12 words that lay in non-speech (likely hallucinated)"; null when nothing was removed. */
  warning: string | null;
}

/** Speech regions widened by `margin` on both sides, sorted and merged: the places where text may lie. */
function allowedIntervals(regions: readonly SpeechRegion[], margin: number): SpeechRegion[] {
  const widened = regions
    .filter((r) => r.end >= r.start)
    .map((r) => ({ start: r.start - margin, end: r.end + margin }))
    .sort((a, b) => a.start - b.start);
  const out: SpeechRegion[] = [];
  for (const r of widened) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/** Whether [start, end] touches any allowed interval (closed intervals; binary search). */
function touches(allowed: SpeechRegion[], start: number, end: number): boolean {
  const lo = Math.min(start, end);
  const hi = Math.max(start, end);
  // First interval whose end is ≥ lo; it touches when it starts at or before hi.
  let low = 0;
  let high = allowed.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (allowed[mid].end < lo) low = mid + 1;
    else high = mid;
  }
  return low < allowed.length && allowed[low].start <= hi;
}

/**
 * Removes words that lie wholly inside VAD non-speech, more than `marginSec` from every speech
 * region (a word at exactly `marginSec` is kept). Segments are rebuilt from their remaining words
 * (text joined from the words, confidence their mean, start/end moved in where edge words went);
 * segments left without words are dropped; segments without word times are kept or dropped by the
 * same rule applied to the segment's own span. The result's text is rebuilt from its segments when
 * anything was removed.
 *
 * With no speech regions at all every word is outside speech and removed: call this only when the
 * VAD actually ran on the audio the engine received.
 *
 * @param regions VAD speech regions in seconds, on the result's timeline (any order).
 * @param marginSec tolerance around speech, seconds (default 1): engines' word times drift, and VAD padding varies.
 */
export function dropWordsOutsideSpeech(result: TranscriptionResult, regions: readonly SpeechRegion[], marginSec = 1): NonSpeechFilterResult {
  if (!(Number.isFinite(marginSec) && marginSec >= 0)) throw new RangeError(`marginSec must be a finite number ≥ 0 (got ${marginSec})`);
  const allowed = allowedIntervals(regions, marginSec);
  let removedWords = 0;
  let removedSegments = 0;
  const segments: Segment[] = [];
  for (const segment of result.segments) {
    if (segment.words.length === 0) {
      if (touches(allowed, segment.start, segment.end)) segments.push(segment);
      else removedSegments++;
      continue;
    }
    const kept = segment.words.filter((w) => touches(allowed, w.start, w.end));
    removedWords += segment.words.length - kept.length;
    if (kept.length === segment.words.length) {
      segments.push(segment);
      continue;
    }
    if (kept.length === 0) continue;
    const first = kept[0];
    const last = kept[kept.length - 1];
    segments.push({
      ...segment,
      start: first === segment.words[0] ? segment.start : first.start,
      end: last === segment.words[segment.words.length - 1] ? segment.end : last.end,
      text: kept.map((w) => w.word).join(' '),
      confidence: meanConfidence(kept),
      words: kept,
    });
  }
  if (removedWords === 0 && removedSegments === 0) return { result, removedWords, removedSegments, warning: null };
  const what = [removedWords ? plural(removedWords, 'word') : '', removedSegments ? `${plural(removedSegments, 'segment')} without word times` : '']
    .filter(Boolean)
    .join(' and ');
  const warning = `removed ${what} that lay in non-speech (likely hallucinated)`;
  return {
    result: {
      ...result,
      text: segments.map((s) => s.text.trim()).filter(Boolean).join(' '),
      segments,
      warnings: [...result.warnings, warning],
    },
    removedWords,
    removedSegments,
    warning,
  };
}

/** One suspected repetition loop. */
export interface RepetitionLoop {
  /** `phrase`: an n-gram repeated back to back; `segment`: the same segment text in consecutive segments. */
  kind: 'phrase' | 'segment';
  /** Seconds: from the start of the first repetition to the end of the last. */
  start: number;
  end: number;
  /** The repeated words, as the engine wrote them the first time. */
  phrase: string;
  /** How many times in a row it occurs. */
  repeats: number;
  /** A plain-words warning naming the span and the phrase, for `TranscriptionResult.warnings`. */
  warning: string;
}

export interface RepetitionOptions {
  /** Longest repeated unit considered, in words (default 8). */
  maxPhraseWords?: number;
  /** Consecutive repetitions of a phrase that make a loop (default 4). */
  minRepeats?: number;
  /**
   * Fewest words a phrase loop must cover (default 8): a short word said four times ("no, no,
   * no, no") is ordinary speech; the same word eight times running rarely is.
   */
  minLoopWords?: number;
  /** Consecutive segments with the same text that make a loop (default 3). */
  minSegmentRepeats?: number;
}

interface Token {
  norm: string;
  text: string;
  start: number;
  end: number;
  segment: number;
}

/** Lower case, letters, digits and inner apostrophes only: "Thank" and "thank," are the same word. */
const normalizeToken = (word: string) => word.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}']+/gu, '').replace(/^'+|'+$/g, '');

function tokens(segments: readonly Segment[]): Token[] {
  const out: Token[] = [];
  segments.forEach((segment, index) => {
    // Word times when the engine gave them; otherwise every word carries its segment's span.
    const words = segment.words.length
      ? segment.words.flatMap((w) => w.word.split(/\s+/).map((text) => ({ text, start: w.start, end: w.end })))
      : segment.text.split(/\s+/).map((text) => ({ text, start: segment.start, end: segment.end }));
    for (const w of words) {
      const norm = normalizeToken(w.text);
      if (norm) out.push({ norm, text: w.text, start: w.start, end: w.end, segment: index });
    }
  });
  return out;
}

const quote = (phrase: string) => `"${phrase.length > 80 ? `${phrase.slice(0, 79)}…` : phrase}"`;
const span = (start: number, end: number) => `${start.toFixed(1)}–${end.toFixed(1)} s`;

/**
 * Flags repetition loops (a Whisper failure mode: the decoder keeps emitting the same phrase) in
 * segments on one timeline. Flags, never deletes: a repeated phrase can be real speech.
 *
 * - Phrase loop: the same 1…`maxPhraseWords`-word phrase back to back at least `minRepeats` times,
 *   covering at least `minLoopWords` words, across segment boundaries too. Words are compared in
 *   lower case without punctuation; the shortest repeating unit is reported ("la" × 12, not
 *   "la la" × 6).
 * - Segment loop: at least `minSegmentRepeats` consecutive segments with the same (normalized) text.
 *   A phrase loop lying wholly inside a flagged segment loop is not reported again.
 *
 * @returns loops in time order; empty for ordinary text.
 */
export function findRepetitionLoops(segments: readonly Segment[], options: RepetitionOptions = {}): RepetitionLoop[] {
  const maxPhraseWords = options.maxPhraseWords ?? 8;
  const minRepeats = options.minRepeats ?? 4;
  const minLoopWords = options.minLoopWords ?? 8;
  const minSegmentRepeats = options.minSegmentRepeats ?? 3;
  const loops: RepetitionLoop[] = [];
  const all = tokens(segments);

  // Segment loops.
  const words: string[][] = segments.map(() => []);
  for (const t of all) words[t.segment].push(t.norm);
  const segmentText = words.map((w) => w.join(' '));
  const inSegmentLoop = new Array<boolean>(segments.length).fill(false);
  for (let i = 0; i < segments.length; ) {
    let j = i + 1;
    while (j < segments.length && segmentText[j] && segmentText[j] === segmentText[i]) j++;
    const repeats = j - i;
    if (segmentText[i] && repeats >= minSegmentRepeats) {
      const start = segments[i].start;
      const end = segments[j - 1].end;
      const phrase = segments[i].text.trim();
      for (let k = i; k < j; k++) inSegmentLoop[k] = true;
      loops.push({ kind: 'segment', start, end, phrase, repeats, warning: `possible repetition loop at ${span(start, end)}: segment ${quote(phrase)} repeated in ${repeats} consecutive segments` });
    }
    i = j;
  }

  // Phrase loops: at each position, the shortest unit that repeats often enough.
  for (let i = 0; i < all.length; ) {
    let found: { n: number; repeats: number } | null = null;
    for (let n = 1; n <= maxPhraseWords && i + n * minRepeats <= all.length; n++) {
      let repeats = 1;
      while (i + (repeats + 1) * n <= all.length && sameRun(all, i, i + repeats * n, n)) repeats++;
      if (repeats >= minRepeats && repeats * n >= minLoopWords) {
        found = { n, repeats };
        break;
      }
    }
    if (!found) {
      i++;
      continue;
    }
    const last = i + found.n * found.repeats - 1;
    const covered = all.slice(i, last + 1).every((t) => inSegmentLoop[t.segment]);
    if (!covered) {
      const start = all[i].start;
      const end = Math.max(...all.slice(i, last + 1).map((t) => t.end));
      const phrase = all.slice(i, i + found.n).map((t) => t.text).join(' ');
      loops.push({ kind: 'phrase', start, end, phrase, repeats: found.repeats, warning: `possible repetition loop at ${span(start, end)}: ${quote(phrase)} repeated ${found.repeats} times in a row` });
    }
    i = last + 1;
  }
  return loops.sort((a, b) => a.start - b.start || a.end - b.end);
}

function sameRun(all: Token[], a: number, b: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (all[a + k].norm !== all[b + k].norm) return false;
  return true;
}
