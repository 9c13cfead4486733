import { deflateSync } from 'node:zlib';
import type { Segment } from '../../src/engines/engine.spec.js';
import type { JobResultView } from '../../src/jobs/dto/job-views.js';
import { languageName } from '../../src/openai-api/languages.js';
import { avgLogprob, compressionRatio, sseFrame, streamDeltas, streamEvents, toTranscriptionJson, toTranscriptionText, toVerboseJson } from '../../src/openai-api/responses.js';

const word = (w: string, start: number, end: number, confidence: number | null = 0.9) => ({ word: w, start, end, confidence, speaker_tag: null });
const segment = (text: string, start: number, end: number, confidence: number | null, words = text.split(' ').map((w, i) => word(w, start + i * 0.3, start + i * 0.3 + 0.25))): Segment => ({
  start, end, text, speaker_tag: null, confidence, words,
});

function view(overrides: Partial<JobResultView> = {}): JobResultView {
  return {
    job_id: 'j', transcript_id: 't', status: 'completed', filename: 'a.wav', task: 'transcribe', audio_url: null,
    language: 'en-US', duration: 7.25, text: 'Hello there. General Kenobi!',
    segments: [segment('Hello there.', 0.5, 1.4, 0.5), segment('General Kenobi!', 2, 3.1, null)],
    speaker_roles: null, engine: 'whisperx', model: 'base', warnings: [], speech_seconds: null, engine_seconds: null,
    ...overrides,
  };
}

describe('OpenAI transcription responses', () => {
  it('json: text and duration usage in whole seconds, rounded up', () => {
    expect(toTranscriptionJson(view())).toEqual({ text: 'Hello there. General Kenobi!', usage: { type: 'duration', seconds: 8 } });
    // Without a recording duration, the end of the last segment.
    expect(toTranscriptionJson(view({ duration: null })).usage).toEqual({ type: 'duration', seconds: 4 });
  });

  it('text: the text and a newline', () => {
    expect(toTranscriptionText(view())).toBe('Hello there. General Kenobi!\n');
  });

  it('verbose_json: segments by default, words only when asked, OpenAI segment fields', () => {
    const v = toVerboseJson(view(), []);
    expect(v).toMatchObject({ task: 'transcribe', language: 'english', duration: 7.25, text: 'Hello there. General Kenobi!', usage: { type: 'duration', seconds: 8 } });
    expect(v.words).toBeUndefined();
    expect(v.segments).toEqual([
      { id: 0, seek: 0, start: 0.5, end: 1.4, text: 'Hello there.', tokens: [], temperature: 0, avg_logprob: Math.log(0.5), compression_ratio: compressionRatio('Hello there.'), no_speech_prob: 0 },
      { id: 1, seek: 0, start: 2, end: 3.1, text: 'General Kenobi!', tokens: [], temperature: 0, avg_logprob: 0, compression_ratio: compressionRatio('General Kenobi!'), no_speech_prob: 0 },
    ]);
    const words = toVerboseJson(view(), ['word']);
    expect(words.segments).toBeUndefined();
    expect(words.words).toEqual([
      { word: 'Hello', start: 0.5, end: 0.75 }, { word: 'there.', start: 0.8, end: 1.05 },
      { word: 'General', start: 2, end: 2.25 }, { word: 'Kenobi!', start: 2.3, end: 2.55 },
    ]);
    const both = toVerboseJson(view(), ['word', 'segment']);
    expect(both.segments).toHaveLength(2);
    expect(both.words).toHaveLength(4);
  });

  it('verbose_json language: the requested one when the engine reported none, else "unknown"', () => {
    expect(toVerboseJson(view({ language: null }), [], 'de').language).toBe('german');
    expect(toVerboseJson(view({ language: null }), []).language).toBe('unknown');
  });

  it('maps language codes to OpenAI names', () => {
    expect(languageName('en')).toBe('english');
    expect(languageName('pt_BR')).toBe('portuguese');
    expect(languageName('yue')).toBe('cantonese');
    expect(languageName('xx-YY')).toBe('xx-yy');
    expect(languageName(null)).toBe('unknown');
  });

  it("avg_logprob is ln(confidence), finite at 0, 0 when unknown; compression ratio is Whisper's", () => {
    expect(avgLogprob(1)).toBe(0);
    expect(avgLogprob(0.25)).toBeCloseTo(-1.386, 3);
    expect(Number.isFinite(avgLogprob(0))).toBe(true);
    expect(avgLogprob(null)).toBe(0);
    const repetitive = 'the the the the the the the the the the the the the the the the';
    expect(compressionRatio(repetitive)).toBeCloseTo(Buffer.byteLength(repetitive) / deflateSync(Buffer.from(repetitive)).length, 10);
    expect(compressionRatio(repetitive)).toBeGreaterThan(2.4);
    expect(compressionRatio('')).toBe(0);
  });

  it('stream deltas: one per segment, concatenating to exactly the text', () => {
    expect(streamDeltas(view())).toEqual(['Hello there.', ' General Kenobi!']);
    // Segment text with different spacing than the full text, and trailing text no segment covers.
    const odd = view({ text: ' Hello there.  General Kenobi! (applause)', segments: [segment(' Hello there. ', 0, 1, null), segment('General Kenobi!', 1, 2, null)] });
    expect(streamDeltas(odd)).toEqual([' Hello there.', '  General Kenobi!', ' (applause)']);
    expect(streamDeltas(odd).join('')).toBe(odd.text);
    // A segment not found in the text: the rest becomes one delta.
    const drift = view({ text: 'one two three', segments: [segment('one', 0, 1, null), segment('zwei', 1, 2, null), segment('three', 2, 3, null)] });
    expect(streamDeltas(drift)).toEqual(['one', ' two three']);
    // Trailing whitespace stays with the last delta; empty text gives no delta.
    expect(streamDeltas(view({ text: 'Hello there.\n', segments: [segment('Hello there.', 0, 1, null)] }))).toEqual(['Hello there.\n']);
    expect(streamDeltas(view({ text: '', segments: [] }))).toEqual([]);
  });

  it('stream events end with transcript.text.done; frames are data-only SSE events', () => {
    expect(streamEvents(view())).toEqual([
      { type: 'transcript.text.delta', delta: 'Hello there.' },
      { type: 'transcript.text.delta', delta: ' General Kenobi!' },
      { type: 'transcript.text.done', text: 'Hello there. General Kenobi!' },
    ]);
    expect(sseFrame({ type: 'transcript.text.delta', delta: 'a\nb' })).toBe('data: {"type":"transcript.text.delta","delta":"a\\nb"}\n\n');
  });
});
