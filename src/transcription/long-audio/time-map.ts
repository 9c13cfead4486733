import type { Segment, TranscriptionResult, Word } from '../../engines/engine.spec.js';
import { mergePieces, type PiecePlacement } from './merge.js';
import type { ChunkSpan, SpeechChunk } from './speech-chunks.js';

/**
 * Time mapping for speech-only chunks (speech-chunks.ts): an engine hears a chunk as its spans
 * laid end to end with `gap_sec` of silence between them, so its times are chunk times; these
 * functions put them back on the recording's timeline. Seconds throughout, rounded to 1 ms.
 */

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Index of the span a chunk-time instant belongs to: the span whose audio holds it; inside a gap,
 * the nearer span (the first half of a gap belongs to the span before it, the second half, from
 * the gap's middle on, to the span after it); before the chunk, the first span; past its end, the last.
 */
export function spanIndexAt(chunk: SpeechChunk, t: number): number {
  const spans = chunk.spans;
  if (spans.length === 0) throw new RangeError(`chunk ${chunk.index} has no spans`);
  // Last span whose gap-half before it starts at or before t.
  let low = 0;
  let high = spans.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (t >= spans[mid].offset - chunk.gap_sec / 2) low = mid;
    else high = mid - 1;
  }
  return low;
}

function mapInSpan(span: ChunkSpan, t: number): number {
  return round3(Math.min(Math.max(span.start + (t - span.offset), span.start), span.end));
}

/**
 * Maps a chunk-time instant (seconds from the start of the chunk's audio) to recording time
 * (seconds from the start of the recording).
 *
 * - Inside a span: linear, `span.start + (t - span.offset)`.
 * - Inside a gap (the silence standing for non-speech that was not sent): the gap's nearer
 *   boundary, i.e. the end of the span before it during the first half of the gap, the start of
 *   the span after it from the middle on. A word that runs into the gap thus ends where the speech
 *   ended, and one that starts early begins where the next speech begins; no time ever lands in
 *   the removed non-speech.
 * - Before 0: the first span's start; past the chunk's end: the last span's end.
 *
 * Non-decreasing in t.
 */
export function toRecordingTime(chunk: SpeechChunk, t: number): number {
  return mapInSpan(chunk.spans[spanIndexAt(chunk, t)], t);
}

function meanConfidence(words: Word[]): number | null {
  const known = words.map((w) => w.confidence).filter((c): c is number => c !== null);
  return known.length ? round3(known.reduce((a, b) => a + b, 0) / known.length) : null;
}

/**
 * Puts one chunk's engine result on the recording's timeline.
 *
 * - Every word is mapped into the span that holds its midpoint (chunk time), and clamped to that
 *   span, so no word straddles non-speech that was cut out.
 * - A segment whose words fall into several spans is split at each span change (a segment never
 *   covers removed non-speech); the pieces take their text from their words. A segment that stays
 *   in one span keeps the engine's text. Segments without words are mapped by their start and end.
 * - Times are made non-decreasing (word starts, segment starts) and kept inside [0, durationSec].
 * - `duration_sec` becomes the recording's; language, warnings and engine are kept.
 *
 * Words are not dropped here; overlap after a mid-speech cut is resolved by `mergeSpeechChunks`.
 * @param durationSec length of the recording, seconds.
 */
export function mapChunkResult(chunk: SpeechChunk, result: TranscriptionResult, durationSec: number): TranscriptionResult {
  const clamp = (x: number) => round3(Math.min(Math.max(x, 0), durationSec));
  const segments: Segment[] = [];
  for (const segment of result.segments) {
    if (segment.words.length === 0) {
      const start = toRecordingTime(chunk, segment.start);
      segments.push({ ...segment, start, end: Math.max(start, toRecordingTime(chunk, segment.end)) });
      continue;
    }
    // Runs of consecutive words that fall into the same span.
    const runs: { span: number; words: Word[] }[] = [];
    for (const w of segment.words) {
      const span = spanIndexAt(chunk, (w.start + w.end) / 2);
      const s = chunk.spans[span];
      const word = { ...w, start: mapInSpan(s, w.start), end: mapInSpan(s, Math.max(w.start, w.end)) };
      const last = runs[runs.length - 1];
      if (last && last.span === span) last.words.push(word);
      else runs.push({ span, words: [word] });
    }
    runs.forEach((run, r) => {
      const span = chunk.spans[run.span];
      const first = run.words[0];
      const final = run.words[run.words.length - 1];
      // The segment's own bounds apply to its first and last runs, within their spans.
      const start = r === 0 ? Math.min(first.start, mapInSpan(span, segment.start)) : first.start;
      const end = r === runs.length - 1 ? Math.max(final.end, mapInSpan(span, segment.end)) : final.end;
      const whole = runs.length === 1;
      segments.push({
        ...segment,
        start,
        end,
        text: whole ? segment.text : run.words.map((w) => w.word).join(' '),
        confidence: whole ? segment.confidence : meanConfidence(run.words),
        words: run.words,
      });
    });
  }

  // Monotonic and inside the recording, whatever order the engine used.
  let lastWord = 0;
  let lastSegment = 0;
  const placed = segments.map((s) => {
    const words = s.words.map((w) => {
      const start = clamp(Math.max(w.start, lastWord));
      lastWord = start;
      return { ...w, start, end: clamp(Math.max(w.end, start)) };
    });
    const first = words[0];
    const start = clamp(Math.min(Math.max(s.start, lastSegment), first ? first.start : Infinity));
    lastSegment = start;
    const end = clamp(Math.max(s.end, start, ...words.map((w) => w.end)));
    return { ...s, start, end, words };
  });
  return {
    ...result,
    text: placed.map((s) => s.text.trim()).filter(Boolean).join(' '),
    duration_sec: durationSec,
    segments: placed,
  };
}

/** A speech chunk as a merge.ts piece: times already mapped (offset 0), ownership by the chunk's core. */
export function speechChunkPlacement(chunk: SpeechChunk): PiecePlacement {
  return { index: chunk.index, channel: null, offset: 0, core_start: chunk.core_start, core_end: chunk.core_end };
}

/**
 * Merges the results of all speech chunks of one recording onto its timeline: each result mapped
 * by `mapChunkResult`, then merged by merge.ts's `mergePieces` with the chunks' cores, so a word
 * heard by two chunks around a mid-speech cut is kept exactly once (by the chunk whose core holds
 * its midpoint). Text joined in order, language by majority, warnings de-duplicated, times
 * non-decreasing and inside [0, durationSec].
 *
 * @param chunks the plan (any order); `results` holds the engine result per chunk index. An empty
 *   plan (no speech) gives an empty result: no segments, language null, engine id `unknown`.
 * @param durationSec length of the recording, seconds.
 * @throws Error when a chunk has no result.
 */
export function mergeSpeechChunks(chunks: readonly SpeechChunk[], results: ReadonlyMap<number, TranscriptionResult>, durationSec: number): TranscriptionResult {
  // mergePieces orders pieces by offset, which is 0 for every mapped chunk: hand them over in recording order.
  const ordered = [...chunks].sort((a, b) => a.core_start - b.core_start || a.index - b.index);
  const mapped = new Map<number, TranscriptionResult>();
  for (const chunk of ordered) {
    const result = results.get(chunk.index);
    if (!result) throw new Error(`no result for speech chunk ${chunk.index}`);
    mapped.set(chunk.index, mapChunkResult(chunk, result, durationSec));
  }
  return mergePieces(ordered.map(speechChunkPlacement), mapped, durationSec);
}
