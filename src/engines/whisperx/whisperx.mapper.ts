import type { Segment, Word } from '../engine.spec.js';

/**
 * The JSON body of `POST /asr?output=json` from a whisper-asr-webservice-compatible server with
 * `ASR_ENGINE=whisperx` (WhisperX's result shape; see docs/ENGINES.md §2). Times are float
 * seconds. Words the aligner cannot place (digits, symbols) come without `start`, `end`,
 * `score` and `speaker`; `speaker` appears only with `diarize=true`.
 */
export interface WhisperxJson {
  language?: string | null;
  segments: WhisperxJsonSegment[];
}

export interface WhisperxJsonSegment {
  start: number;
  end: number;
  text: string;
  /** pyannote label, `SPEAKER_00`, `SPEAKER_01`, … */
  speaker?: string | null;
  words?: WhisperxJsonWord[];
}

export interface WhisperxJsonWord {
  word: string;
  start?: number | null;
  end?: number | null;
  /** Alignment score 0..1 (WhisperX). */
  score?: number | null;
  /** Word probability 0..1: what openai-whisper / faster-whisper engines of the same webservice send instead of `score`. */
  probability?: number | null;
  speaker?: string | null;
}

/** What {@link mapWhisperxJson} produced besides the segments. */
export interface MappedWhisperx {
  segments: Segment[];
  /** Language the server reported (the detected one when none was given), or null. */
  language: string | null;
  /** Distinct pyannote labels in order of first appearance; index = speaker_tag. */
  speakerLabels: string[];
  /** Words that came without times and were given interpolated ones. */
  interpolatedWords: number;
}

/** Why a body is not a WhisperX result; carries the JSON path of the first problem. */
export class WhisperxShapeError extends Error {
  constructor(readonly path: string, problem: string) {
    super(`${path} ${problem}`);
    this.name = 'WhisperxShapeError';
  }
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const label = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);
/** Three decimals: milliseconds for times, enough resolution for 0..1 confidences. */
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Checks that a parsed body has the WhisperX result shape: `segments` an array of objects with
 * numeric `start`/`end`, string `text`, optional `words` array of objects with a string `word`.
 *
 * @throws WhisperxShapeError naming the first offending path.
 */
export function assertWhisperxJson(body: unknown): asserts body is WhisperxJson {
  if (!isObject(body)) throw new WhisperxShapeError('$', 'is not a JSON object');
  if (body.language !== undefined && body.language !== null && typeof body.language !== 'string') {
    throw new WhisperxShapeError('$.language', 'is not a string');
  }
  if (!Array.isArray(body.segments)) throw new WhisperxShapeError('$.segments', 'is not an array');
  body.segments.forEach((segment, i) => {
    const at = `$.segments[${i}]`;
    if (!isObject(segment)) throw new WhisperxShapeError(at, 'is not an object');
    if (!isFiniteNumber(segment.start) || !isFiniteNumber(segment.end)) throw new WhisperxShapeError(at, 'has no numeric start/end');
    if (typeof segment.text !== 'string') throw new WhisperxShapeError(`${at}.text`, 'is not a string');
    if (segment.words === undefined || segment.words === null) return;
    if (!Array.isArray(segment.words)) throw new WhisperxShapeError(`${at}.words`, 'is not an array');
    segment.words.forEach((word, j) => {
      if (!isObject(word) || typeof word.word !== 'string') throw new WhisperxShapeError(`${at}.words[${j}]`, 'has no string word');
    });
  });
}

/** A word before clamping, with its pyannote label. */
interface DraftWord {
  word: string;
  start: number;
  end: number;
  confidence: number | null;
  label: string | null;
  interpolated: boolean;
}

/**
 * Gives every untimed word a time inside the gap between its timed neighbours in the same
 * segment: the previous timed word's end (or the segment start) to the next timed word's start
 * (or the segment end), split evenly among consecutive untimed words. A gap that is empty or
 * negative yields zero-length words at its start, never times that go backwards.
 */
function timeWords(segment: WhisperxJsonSegment): DraftWord[] {
  const words = segment.words ?? [];
  const timed = words.map((w) => isFiniteNumber(w.start) && isFiniteNumber(w.end));
  const out: DraftWord[] = [];
  let i = 0;
  while (i < words.length) {
    const w = words[i];
    const score = isFiniteNumber(w.score) ? w.score : isFiniteNumber(w.probability) ? w.probability : null;
    if (timed[i]) {
      out.push({
        word: w.word.trim(),
        start: w.start as number,
        end: Math.max(w.start as number, w.end as number),
        confidence: score === null ? null : Math.min(1, Math.max(0, score)),
        label: label(w.speaker),
        interpolated: false,
      });
      i++;
      continue;
    }
    let j = i;
    while (j < words.length && !timed[j]) j++;
    const previous = out.length > 0 ? out[out.length - 1].end : segment.start;
    const next = j < words.length ? (words[j].start as number) : segment.end;
    const lo = previous;
    const step = Math.max(0, next - lo) / (j - i);
    for (let k = i; k < j; k++) {
      const n = k - i;
      out.push({ word: words[k].word.trim(), start: lo + n * step, end: lo + (n + 1) * step, confidence: null, label: label(words[k].speaker), interpolated: true });
    }
    i = j;
  }
  return out.filter((w) => w.word !== '');
}

/** The label most of `words` carry; ties go to the label that occurs first. */
function majorityLabel(words: DraftWord[]): string | null {
  const counts = new Map<string, number>();
  for (const w of words) if (w.label) counts.set(w.label, (counts.get(w.label) ?? 0) + 1);
  let best: string | null = null;
  for (const [l, c] of counts) if (best === null || c > counts.get(best)!) best = l;
  return best;
}

/**
 * Maps a WhisperX result to the engine spec's segments (seconds, rounded to milliseconds).
 *
 * - Speakers: distinct labels (segment and word) in order of first appearance in time become
 *   speaker_tag 0…N-1, the same number for a label everywhere (pyannote numbers speakers in its
 *   own order, not by who speaks first). A segment without a label takes the majority label of
 *   its words; a word without a label takes its segment's. No labels at all: every tag is null.
 * - Words without times are kept, timed by interpolation (see timeWords), flagged
 *   `interpolated: true`, with confidence null.
 * - Word confidence = `score` (or `probability`) clamped to 0..1, else null; segment confidence =
 *   mean of its word confidences, null when none has one.
 * - Times are clamped to [0, durationSec] and made non-decreasing across the result; a segment
 *   always spans its words.
 *
 * @param durationSec duration of the audio sent, seconds (the clamp's upper bound).
 */
export function mapWhisperxJson(body: WhisperxJson, durationSec: number): MappedWhisperx {
  const limit = Math.max(0, durationSec);
  const clamp = (t: number) => round3(Math.min(limit, Math.max(0, t)));
  const drafts = [...body.segments]
    .sort((a, b) => a.start - b.start)
    .map((segment) => {
      const words = timeWords(segment);
      const segmentLabel = label(segment.speaker) ?? majorityLabel(words);
      for (const w of words) w.label ??= segmentLabel;
      return { segment, words, label: segmentLabel };
    });

  // First appearance in time: a segment's label counts from its start, a word's from its own.
  const appearances: { at: number; label: string }[] = [];
  for (const d of drafts) {
    if (d.label) appearances.push({ at: d.segment.start, label: d.label });
    for (const w of d.words) if (w.label) appearances.push({ at: w.start, label: w.label });
  }
  appearances.sort((a, b) => a.at - b.at);
  const tags = new Map<string, number>();
  for (const a of appearances) if (!tags.has(a.label)) tags.set(a.label, tags.size);
  const tagOf = (l: string | null) => (l === null ? null : tags.get(l)!);

  // Word starts never go backwards across the whole result, nor segment starts.
  let floor = 0;
  let cursor = 0;
  let interpolatedWords = 0;
  const segments: Segment[] = drafts.map(({ segment, words, label: segmentLabel }) => {
    const segmentStart = Math.max(floor, clamp(segment.start));
    cursor = Math.max(cursor, segmentStart);
    const mapped: Word[] = words.map((w) => {
      const start = Math.max(cursor, clamp(w.start));
      const end = Math.max(start, clamp(w.end));
      cursor = start;
      if (w.interpolated) interpolatedWords++;
      return {
        word: w.word,
        start,
        end,
        confidence: w.confidence === null ? null : round3(w.confidence),
        speaker_tag: tagOf(w.label),
        ...(w.interpolated ? { interpolated: true } : {}),
      };
    });
    const scores = mapped.map((w) => w.confidence).filter((c): c is number => c !== null);
    const start = mapped.length > 0 ? Math.min(segmentStart, mapped[0].start) : segmentStart;
    const end = Math.max(start, clamp(segment.end), ...mapped.map((w) => w.end));
    floor = start;
    return {
      start,
      end,
      text: segment.text.trim(),
      speaker_tag: tagOf(segmentLabel),
      confidence: scores.length > 0 ? round3(scores.reduce((a, b) => a + b, 0) / scores.length) : null,
      words: mapped,
    };
  });

  return {
    segments,
    language: typeof body.language === 'string' && body.language.trim() !== '' ? body.language.trim() : null,
    speakerLabels: [...tags.keys()],
    interpolatedWords,
  };
}
