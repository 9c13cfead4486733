import type { Segment, TranscriptionResult, Word } from '../../src/engines/engine.spec.js';
import { mergePieces, type PiecePlacement } from '../../src/transcription/long-audio/merge.js';

const w = (word: string, start: number, end: number, speaker_tag: number | null = null): Word => ({ word, start, end, confidence: 0.9, speaker_tag });
const seg = (words: Word[]): Segment => ({ start: words[0].start, end: words[words.length - 1].end, text: words.map((x) => x.word).join(' '), speaker_tag: null, confidence: 0.9, words });
const result = (segments: Segment[], language = 'en'): TranscriptionResult => ({
  text: segments.map((s) => s.text).join(' '), language, duration_sec: 0, segments, warnings: [], engine: { id: 'pocketsphinx', model: 'en-us' },
});

describe('mergePieces', () => {
  it('adds each piece offset and joins text in order', () => {
    const pieces: PiecePlacement[] = [
      { index: 0, channel: null, offset: 0, core_start: 0, core_end: 10 },
      { index: 1, channel: null, offset: 10, core_start: 10, core_end: 20 },
    ];
    const merged = mergePieces(pieces, new Map([[1, result([seg([w('world', 1, 1.5)])])], [0, result([seg([w('hello', 2, 2.4)])])]]), 20);
    expect(merged.text).toBe('hello world');
    expect(merged.segments[1].words[0]).toMatchObject({ word: 'world', start: 11, end: 11.5 });
  });

  it('keeps each word of an overlap exactly once: in the piece whose core holds its midpoint', () => {
    // Blind cut at 100 with 1 s overlap: piece 0 covers 0–101, piece 1 covers 99–200.
    const pieces: PiecePlacement[] = [
      { index: 0, channel: null, offset: 0, core_start: 0, core_end: 100 },
      { index: 1, channel: null, offset: 99, core_start: 100, core_end: 200 },
    ];
    const a = result([seg([w('one', 98, 98.5), w('two', 99.6, 100.2), w('three', 100.4, 100.9)])]);
    // Piece 1 heard the same words, in its own time (offset 99).
    const b = result([seg([w('two', 0.6, 1.2), w('three', 1.4, 1.9), w('four', 3, 3.5)])]);
    const merged = mergePieces(pieces, new Map([[0, a], [1, b]]), 200);
    const words = merged.segments.flatMap((s) => s.words.map((x) => x.word));
    expect(words).toEqual(['one', 'two', 'three', 'four']);
    const times = merged.segments.flatMap((s) => s.words.map((x) => x.start));
    expect(times).toEqual([98, 99.6, 100.4, 102]);
  });

  it('keeps times non-decreasing and inside the duration, and picks the majority language', () => {
    const pieces: PiecePlacement[] = [0, 1, 2].map((i) => ({ index: i, channel: null, offset: i * 5, core_start: i * 5, core_end: i * 5 + 5 }));
    const merged = mergePieces(pieces, new Map([
      [0, result([seg([w('a', 1, 2)])], 'en')],
      [1, result([seg([w('b', 0.5, 1)])], 'de')],
      [2, result([seg([w('c', 4.9, 5.3)])], 'en')],
    ]), 15);
    expect(merged.language).toBe('en');
    const words = merged.segments.flatMap((s) => s.words);
    expect(words.map((x) => x.word)).toEqual(['a', 'b', 'c']);
    for (const x of words) expect(x.end).toBeLessThanOrEqual(15);
    // 'c' ran past the end of the recording: kept by the last piece, clamped to the duration.
    expect(words[2]).toMatchObject({ start: 14.9, end: 15 });
    expect(words.map((x) => x.start)).toEqual([1, 5.5, 14.9]);
  });

  it('single channel: a word heard past the cut by one piece ends where the next piece\'s first word starts', () => {
    // Piece 0 placed "across" ending at 23.118; piece 1 placed "the" starting at 23.07 (the cut is at 23.1).
    const pieces: PiecePlacement[] = [
      { index: 0, channel: null, offset: 0, core_start: 0, core_end: 23.1 },
      { index: 1, channel: null, offset: 20, core_start: 23.1, core_end: 40 },
    ];
    const a = result([seg([w('walked', 22.4, 22.7), w('across', 22.7, 23.118)])]);
    const b = result([{ ...seg([w('the', 3.07, 3.3), w('road', 3.3, 3.8)]), start: 2.9 }]);
    const merged = mergePieces(pieces, new Map([[0, a], [1, b]]), 40);
    const words = merged.segments.flatMap((s) => s.words);
    expect(words.map((x) => [x.word, x.start, x.end])).toEqual([
      ['walked', 22.4, 22.7], ['across', 22.7, 23.07], ['the', 23.07, 23.3], ['road', 23.3, 23.8],
    ]);
    // The later segment's start (22.9, before "across" ended) moves to where the earlier one's words end.
    expect(merged.segments.map((s) => [s.start, s.end])).toEqual([[22.4, 23.07], [23.07, 23.8]]);
  });

  it('tags words by channel and interleaves channels into speaker turns in time order', () => {
    const pieces: PiecePlacement[] = [
      { index: 0, channel: 0, offset: 0, core_start: 0, core_end: 5 },
      { index: 1, channel: 1, offset: 0, core_start: 0, core_end: 5 },
    ];
    const left = result([seg([w('hello', 0.1, 0.5), w('there', 0.6, 0.9), w('bye', 3, 3.3)])]);
    const right = result([seg([w('hi', 1.2, 1.5), w('ok', 1.6, 1.8)])]);
    const merged = mergePieces(pieces, new Map([[0, left], [1, right]]), 5);
    expect(merged.segments.map((s) => [s.speaker_tag, s.text])).toEqual([[0, 'hello there'], [1, 'hi ok'], [0, 'bye']]);
    for (const s of merged.segments) for (const x of s.words) expect(x.speaker_tag).toBe(s.speaker_tag);
  });
});
