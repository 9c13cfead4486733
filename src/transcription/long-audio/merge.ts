import type { Segment, TranscriptionResult, Word } from '../../engines/engine.spec.js';

/** Where one piece (a chunk of one channel) sits in the recording. Seconds. */
export interface PiecePlacement {
  index: number;
  /** 0-based channel for multichannel jobs, null for the (downmixed) mono recording. */
  channel: number | null;
  /** Start of the piece's audio in the recording: added to every time the engine returned. */
  offset: number;
  /** The part of the recording this piece is responsible for (see PlannedChunk). */
  core_start: number;
  core_end: number;
}

/** A pause longer than this (seconds) starts a new segment when multichannel words are regrouped into turns. */
const TURN_GAP_SEC = 2;

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function meanConfidence(words: Word[]): number | null {
  const known = words.map((w) => w.confidence).filter((c): c is number => c !== null);
  return known.length ? round3(known.reduce((a, b) => a + b, 0) / known.length) : null;
}

/** Makes times non-decreasing and keeps them inside [0, duration]. */
function clampWords(words: Word[], duration: number): Word[] {
  let last = 0;
  return words.map((w) => {
    const start = round3(Math.min(Math.max(w.start, last, 0), duration));
    const end = round3(Math.min(Math.max(w.end, start), duration));
    last = start;
    return { ...w, start, end };
  });
}

/**
 * Shifts one piece's result into recording time and keeps only what lies in its core:
 * a word belongs to the piece whose core holds the word's midpoint, so overlapping pieces never
 * duplicate or lose a word. Segments without words are kept when their midpoint is in the core.
 */
function placePiece(piece: PiecePlacement, result: TranscriptionResult, isFirst: boolean, isLast: boolean): Segment[] {
  // The first and last pieces also own words an engine placed slightly outside the recording.
  const inCore = (start: number, end: number) => {
    const mid = (start + end) / 2;
    return (isFirst || mid >= piece.core_start) && (isLast || mid < piece.core_end);
  };
  const speaker = piece.channel;
  const out: Segment[] = [];
  for (const segment of result.segments) {
    const shifted = {
      start: segment.start + piece.offset,
      end: segment.end + piece.offset,
    };
    if (segment.words.length === 0) {
      if (inCore(shifted.start, shifted.end)) {
        out.push({ ...segment, ...shifted, speaker_tag: speaker ?? segment.speaker_tag });
      }
      continue;
    }
    const words = segment.words
      .map((w) => ({ ...w, start: w.start + piece.offset, end: w.end + piece.offset, speaker_tag: speaker ?? w.speaker_tag }))
      .filter((w) => inCore(w.start, w.end));
    if (words.length === 0) continue;
    const whole = words.length === segment.words.length;
    out.push({
      start: whole ? Math.min(shifted.start, words[0].start) : words[0].start,
      end: whole ? Math.max(shifted.end, words[words.length - 1].end) : words[words.length - 1].end,
      // A segment cut by the core keeps only its words' text; a whole one keeps the engine's text (punctuation, casing).
      text: whole ? segment.text : words.map((w) => w.word).join(' '),
      speaker_tag: speaker ?? segment.speaker_tag,
      confidence: whole ? segment.confidence : meanConfidence(words),
      words,
    });
  }
  return out;
}

/** Regroups time-ordered words of several channels into speaker turns (a new segment at a speaker change or a long pause). */
/**
 * Single channel: one voice, so nothing overlaps. Two pieces cut mid-speech can each place a word
 * at the cut slightly differently (a word's end heard by one chunk past the next word's start
 * heard by the other); here each word ends no later than the next one starts (the earlier word's
 * end is trimmed, starts are kept), and each segment ends no later than the next one starts (the
 * boundary goes to the later segment's start, but never inside either segment's words).
 * Expects words and segment starts already non-decreasing (clampWords and the caller do that).
 */
function separate(segments: Segment[]): Segment[] {
  const out = segments.map((s) => ({ ...s, words: s.words.map((w) => ({ ...w })) }));
  const words = out.flatMap((s) => s.words);
  for (let i = 1; i < words.length; i++) {
    const prev = words[i - 1];
    if (prev.end > words[i].start) prev.end = Math.max(prev.start, words[i].start);
  }
  for (let i = 1; i < out.length; i++) {
    const prev = out[i - 1];
    const next = out[i];
    if (next.start >= prev.end) continue;
    const prevWordsEnd = prev.words.length ? prev.words[prev.words.length - 1].end : prev.start;
    const nextWordsStart = next.words.length ? next.words[0].start : next.end;
    const boundary = round3(Math.min(Math.max(next.start, prevWordsEnd), Math.max(nextWordsStart, prevWordsEnd)));
    prev.end = Math.max(prev.start, boundary);
    next.start = boundary;
    if (next.end < next.start) next.end = next.start;
  }
  return out;
}

function turns(words: Word[]): Segment[] {
  const segments: Segment[] = [];
  let current: Word[] = [];
  const flush = () => {
    if (!current.length) return;
    segments.push({
      start: current[0].start,
      end: Math.max(...current.map((w) => w.end)),
      text: current.map((w) => w.word).join(' '),
      speaker_tag: current[0].speaker_tag,
      confidence: meanConfidence(current),
      words: current,
    });
    current = [];
  };
  for (const w of words) {
    const previous = current[current.length - 1];
    if (previous && (previous.speaker_tag !== w.speaker_tag || w.start - previous.end > TURN_GAP_SEC)) flush();
    current.push(w);
  }
  flush();
  return segments;
}

/** Most frequent non-null value (ties: the first seen), or null. */
function majority(values: (string | null)[]): string | null {
  const counts = new Map<string, number>();
  for (const v of values) if (v) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: string | null = null;
  for (const [v, n] of counts) if (best === null || n > counts.get(best)!) best = v;
  return best;
}

/**
 * Merges the results of a recording's pieces into one normalized result.
 *
 * - Every time gets its piece's offset added; each word is kept by exactly one piece (core rule).
 * - Single channel: segments in piece order, text joined in order.
 * - Multichannel: every word gets `speaker_tag` = its channel; words of all channels are merged
 *   in time order and regrouped into speaker turns.
 * - Language by majority over pieces; warnings de-duplicated.
 * - Times are made non-decreasing and kept inside [0, duration]; single channel, words and
 *   segments do not overlap (see `separate`).
 *
 * @param pieces placements, in any order; `results` holds the engine result for each piece index.
 * @param duration seconds of the whole recording.
 */
export function mergePieces(
  pieces: PiecePlacement[],
  results: Map<number, TranscriptionResult>,
  duration: number,
): TranscriptionResult {
  const ordered = [...pieces].sort((a, b) => (a.channel ?? 0) - (b.channel ?? 0) || a.offset - b.offset);
  const multichannel = ordered.some((p) => p.channel !== null);
  const firstOfChannel = new Map<number | null, number>();
  const lastOfChannel = new Map<number | null, number>();
  for (const p of ordered) {
    if (!firstOfChannel.has(p.channel)) firstOfChannel.set(p.channel, p.index);
    lastOfChannel.set(p.channel, p.index);
  }

  const placed: Segment[] = [];
  for (const piece of ordered) {
    const result = results.get(piece.index);
    if (!result) throw new Error(`no result for piece ${piece.index}`);
    placed.push(...placePiece(piece, result, firstOfChannel.get(piece.channel) === piece.index, lastOfChannel.get(piece.channel) === piece.index));
  }

  let segments: Segment[];
  if (multichannel) {
    const words = placed.flatMap((s) => s.words).sort((a, b) => a.start - b.start || (a.speaker_tag ?? 0) - (b.speaker_tag ?? 0));
    segments = turns(clampWords(words, duration));
  } else {
    let last = 0;
    segments = placed.map((s) => {
      const words = clampWords(s.words, duration).map((w) => (w.start < last ? { ...w, start: last, end: Math.max(w.end, last) } : w));
      if (words.length) last = words[words.length - 1].start;
      const start = round3(Math.min(Math.max(0, words.length ? Math.min(s.start, words[0].start) : s.start), duration));
      const end = round3(Math.min(Math.max(start, s.end, ...words.map((w) => w.end)), duration));
      return { ...s, start, end, words };
    });
    segments = separate(segments);
  }

  const all = [...results.values()];
  return {
    text: segments.map((s) => s.text.trim()).filter(Boolean).join(' '),
    language: majority(all.map((r) => r.language)),
    duration_sec: duration,
    segments,
    warnings: [...new Set(all.flatMap((r) => r.warnings))],
    engine: all[0]?.engine ?? { id: 'unknown', model: null },
  };
}
