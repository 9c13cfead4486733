import type { Segment, TranscriptionResult, Word } from '../../src/engines/engine.spec.js';
import { dropWordsOutsideSpeech, findRepetitionLoops } from '../../src/transcription/long-audio/hallucination-guard.js';

const word = (w: string, start: number, end: number, confidence: number | null = 0.9): Word => ({ word: w, start, end, confidence, speaker_tag: null });
const segmentOf = (words: Word[], text = words.map((w) => w.word).join(' ')): Segment => ({
  start: words[0].start, end: words[words.length - 1].end, text, speaker_tag: null, confidence: 0.9, words,
});
const bare = (text: string, start: number, end: number): Segment => ({ start, end, text, speaker_tag: null, confidence: null, words: [] });
const resultOf = (segments: Segment[]): TranscriptionResult => ({
  text: segments.map((s) => s.text).join(' '), language: 'en', duration_sec: 300, segments, warnings: ['earlier warning'], engine: { id: 'whisperx', model: 'large-v3' },
});
/** Words of a phrase laid out every 0.4 s from `start`. */
const spoken = (text: string, start: number): Word[] => text.split(' ').map((w, i) => word(w, start + i * 0.4, start + i * 0.4 + 0.3));

describe('dropWordsOutsideSpeech', () => {
  const regions = [{ start: 10, end: 20 }, { start: 100, end: 110 }];

  it('removes words lying wholly in long non-speech and keeps those in or near speech', () => {
    const result = resultOf([
      segmentOf([word('Hello', 10.2, 10.6), word('world.', 10.7, 11.2)], 'Hello world.'),
      // 60 s into a 80 s silence: a classic hallucination.
      segmentOf([word('Thank', 60, 60.3), word('you', 60.3, 60.5), word('for', 60.5, 60.7), word('watching.', 60.7, 61.2)], 'Thank you for watching.'),
      // Within the 1 s margin around speech: kept (VAD padding and word times drift).
      segmentOf([word('okay', 20.4, 20.9), word('so', 98.6, 99.1)], 'okay so'),
    ]);
    const out = dropWordsOutsideSpeech(result, regions);
    expect(out.removedWords).toBe(4);
    expect(out.removedSegments).toBe(0);
    expect(out.warning).toBe('removed 4 words that lay in non-speech (likely hallucinated)');
    expect(out.result.segments.map((s) => s.text)).toEqual(['Hello world.', 'okay so']);
    expect(out.result.text).toBe('Hello world. okay so');
    expect(out.result.warnings).toEqual(['earlier warning', out.warning]);
    // The input is left alone.
    expect(result.segments).toHaveLength(3);
  });

  it('rebuilds a segment from its remaining words: text, confidence and edges', () => {
    const segment = {
      ...segmentOf([word('Right.', 19.5, 19.9, 0.8), word('Subtitles', 40, 40.5, 0.2), word('by', 40.5, 40.7, 0.2)], 'Right. Subtitles by'),
      start: 19.4,
      end: 40.9,
      confidence: 0.4,
    };
    const out = dropWordsOutsideSpeech(resultOf([segment]), regions);
    expect(out.removedWords).toBe(2);
    expect(out.result.segments).toEqual([{ start: 19.4, end: 19.9, text: 'Right.', speaker_tag: null, confidence: 0.8, words: [segment.words[0]] }]);
    expect(out.warning).toBe('removed 2 words that lay in non-speech (likely hallucinated)');
  });

  it('uses the margin exactly: a word at marginSec from speech is kept, one beyond it removed', () => {
    const out = dropWordsOutsideSpeech(resultOf([segmentOf([word('edge', 21, 21.5), word('beyond', 22.01, 22.5)])]), regions, 1);
    expect(out.result.segments[0].words.map((w) => w.word)).toEqual(['edge']);
    const wide = dropWordsOutsideSpeech(resultOf([segmentOf([word('edge', 21, 21.5), word('beyond', 22.01, 22.5)])]), regions, 3);
    expect(wide.removedWords).toBe(0);
    expect(wide.warning).toBeNull();
  });

  it('keeps or drops segments without word times by their own span, and says so', () => {
    const out = dropWordsOutsideSpeech(resultOf([bare('real speech', 12, 18), bare('ghost text', 50, 55), bare('straddles', 5, 9.5), segmentOf([word('uh', 70, 70.2)])]), regions);
    expect(out.result.segments.map((s) => s.text)).toEqual(['real speech', 'straddles']);
    expect(out.removedSegments).toBe(1);
    expect(out.removedWords).toBe(1);
    expect(out.warning).toBe('removed 1 word and 1 segment without word times that lay in non-speech (likely hallucinated)');
  });

  it('returns the same result when nothing lies in non-speech, and removes everything when there is no speech at all', () => {
    const result = resultOf([segmentOf(spoken('all inside speech', 101))]);
    const out = dropWordsOutsideSpeech(result, regions);
    expect(out).toEqual({ result, removedWords: 0, removedSegments: 0, warning: null });
    expect(out.result).toBe(result);
    const none = dropWordsOutsideSpeech(result, []);
    expect(none.removedWords).toBe(3);
    expect(none.result.segments).toEqual([]);
    expect(none.result.text).toBe('');
  });

  it('accepts regions in any order and rejects a bad margin', () => {
    const out = dropWordsOutsideSpeech(resultOf([segmentOf([word('a', 105, 105.2), word('b', 15, 15.2), word('c', 50, 50.2)])]), [...regions].reverse());
    expect(out.result.segments[0].words.map((w) => w.word)).toEqual(['a', 'b']);
    expect(() => dropWordsOutsideSpeech(resultOf([]), regions, -1)).toThrow(RangeError);
  });
});

describe('findRepetitionLoops', () => {
  it('flags a phrase repeated over and over, naming the span, the phrase and the count', () => {
    const loop = spoken(Array.from({ length: 10 }, () => 'thank you').join(' '), 30);
    const segments = [segmentOf(spoken('so that was the plan', 20)), segmentOf(loop)];
    const loops = findRepetitionLoops(segments);
    expect(loops).toHaveLength(1);
    expect(loops[0]).toMatchObject({ kind: 'phrase', phrase: 'thank you', repeats: 10, start: 30 });
    expect(loops[0].end).toBeCloseTo(30 + 19 * 0.4 + 0.3, 6);
    expect(loops[0].warning).toBe('possible repetition loop at 30.0–37.9 s: "thank you" repeated 10 times in a row');
  });

  it('reports the shortest repeating unit and compares words without case or punctuation', () => {
    const [loop] = findRepetitionLoops([segmentOf(spoken('La la, la. La la la la la la LA la la!', 5))]);
    expect(loop).toMatchObject({ phrase: 'La', repeats: 12 });
    const [long] = findRepetitionLoops([bare('I will go now. I will go now. I will go now. I will go now.', 50, 58)]);
    expect(long).toMatchObject({ kind: 'phrase', phrase: 'I will go now.', repeats: 4, start: 50, end: 58 });
  });

  it('finds a loop that runs across segments', () => {
    const segments = [0, 1, 2, 3, 4].map((i) => segmentOf(spoken('we are going to the', 10 + i * 2)));
    segments.unshift(segmentOf(spoken('and then', 8)));
    const loops = findRepetitionLoops(segments.map((s, i) => (i === 0 ? s : { ...s, text: s.text + (i % 2 ? '.' : ',') })));
    // Identical segment text in five consecutive segments is reported once, as a segment loop.
    expect(loops).toHaveLength(1);
    expect(loops[0]).toMatchObject({ kind: 'segment', repeats: 5, start: 10 });

    const split = [segmentOf(spoken('yes sir yes sir yes', 1)), segmentOf(spoken('sir yes sir yes sir', 3)), segmentOf(spoken('yes sir and more', 5))];
    expect(findRepetitionLoops(split)).toMatchObject([{ kind: 'phrase', phrase: 'yes sir', repeats: 6, start: 1 }]);
  });

  it('flags a segment text repeated in three consecutive segments', () => {
    const segments = [bare('Hello everyone.', 0, 2), bare('Please subscribe to the channel.', 2, 5), bare('please subscribe to the channel', 5, 8), bare('Please subscribe to the channel!', 8, 11), bare('Bye.', 11, 12)];
    const loops = findRepetitionLoops(segments);
    expect(loops).toEqual([{
      kind: 'segment', start: 2, end: 11, phrase: 'Please subscribe to the channel.', repeats: 3,
      warning: 'possible repetition loop at 2.0–11.0 s: segment "Please subscribe to the channel." repeated in 3 consecutive segments',
    }]);
    // Twice is not a loop.
    expect(findRepetitionLoops(segments.slice(0, 3))).toEqual([]);
  });

  it('does not flag ordinary speech', () => {
    const text = [
      'Good morning and welcome to the quarterly review.',
      'We will start with the numbers, then move on to the roadmap.',
      'No, no, no, no, that is not what I meant.',
      'Very very good, thank you. Thank you all for coming.',
      'The the model said the the same thing twice, which is fine.',
      'Okay.', 'Okay.',
    ];
    const segments = text.map((t, i) => segmentOf(spoken(t, i * 10), t));
    expect(findRepetitionLoops(segments)).toEqual([]);
    expect(findRepetitionLoops([])).toEqual([]);
  });

  it('takes thresholds as options', () => {
    const segments = [segmentOf(spoken('no no no no', 0))];
    expect(findRepetitionLoops(segments)).toEqual([]);
    expect(findRepetitionLoops(segments, { minLoopWords: 4 })).toMatchObject([{ phrase: 'no', repeats: 4 }]);
  });
});
