import type { Segment, Word } from '../../src/engines/engine.spec.js';
import {
  EXPORT_CONTENT_TYPES,
  ExportFormatError,
  buildCues,
  exportContentDisposition,
  pickFormat,
  toSrt,
  toText,
  toVtt,
  type TranscriptExportSource,
} from '../../src/transcripts/exports.js';

/** A parsed subtitle cue: times in seconds, text lines as written (labels included for SRT). */
interface ParsedCue {
  index?: number;
  start: number;
  end: number;
  lines: string[];
}

const toSec = (h: string, m: string, s: string, ms: string) => Number(h) * 3600 + Number(m) * 60 + Number(s) + Number(ms) / 1000;

/** Parses SubRip strictly: numbered blocks separated by one blank line, `HH:MM:SS,mmm --> HH:MM:SS,mmm`. */
function parseSrt(srt: string): ParsedCue[] {
  expect(srt.endsWith('\n')).toBe(true);
  return srt
    .trimEnd()
    .split('\n\n')
    .map((block) => {
      const [index, timing, ...lines] = block.split('\n');
      expect(index).toMatch(/^\d+$/);
      const m = /^(\d{2,}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2,}):(\d{2}):(\d{2}),(\d{3})$/.exec(timing ?? '');
      if (!m) throw new Error(`bad SRT timing line: ${timing}`);
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(line.trim()).not.toBe('');
      return { index: Number(index), start: toSec(m[1], m[2], m[3], m[4]), end: toSec(m[5], m[6], m[7], m[8]), lines };
    });
}

/** Parses WebVTT: `WEBVTT` header, blocks of `HH:MM:SS.mmm --> HH:MM:SS.mmm` plus text. */
function parseVtt(vtt: string): ParsedCue[] {
  const [header, ...blocks] = vtt.trimEnd().split('\n\n');
  expect(header).toBe('WEBVTT');
  return blocks.map((block) => {
    const [timing, ...lines] = block.split('\n');
    const m = /^(\d{2,}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2,}):(\d{2}):(\d{2})\.(\d{3})$/.exec(timing ?? '');
    if (!m) throw new Error(`bad VTT timing line: ${timing}`);
    return { start: toSec(m[1], m[2], m[3], m[4]), end: toSec(m[5], m[6], m[7], m[8]), lines };
  });
}

/** Splits a VTT cue body into its voice (unescaped) and unescaped text; rejects raw `<`/`>`/`&` outside the voice tags. */
function vttVoice(lines: string[]): { voice: string | null; text: string } {
  const body = lines.join('\n');
  const m = /^<v ([^>]+)>([\s\S]*)<\/v>$/.exec(body);
  const inner = m ? m[2] : body;
  expect(inner).not.toMatch(/[<>]/);
  expect(inner).not.toMatch(/&(?!amp;|lt;|gt;)/);
  const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  return { voice: m ? unescape(m[1]) : null, text: unescape(inner) };
}

/** Words with even timing across [start, end], as an aligner would give them. */
function timedWords(text: string, start: number, end: number, speaker: number | null = null): Word[] {
  const tokens = text.split(' ');
  const step = (end - start) / tokens.length;
  return tokens.map((word, i) => ({
    word,
    start: +(start + i * step).toFixed(3),
    end: +(start + (i + 1) * step - 0.05).toFixed(3),
    confidence: 0.9,
    speaker_tag: speaker,
  }));
}

function segment(text: string, start: number, end: number, speaker: number | null = null, withWords = true): Segment {
  return { start, end, text, speaker_tag: speaker, confidence: 0.9, words: withWords ? timedWords(text, start, end, speaker) : [] };
}

/** Asserts what every export must hold: ordered, non-overlapping, positive-length cues within the segments. */
function expectWellFormed(cues: ParsedCue[], segments: Segment[]): void {
  const first = Math.min(...segments.map((s) => s.start));
  const last = Math.max(...segments.map((s) => s.end));
  cues.forEach((cue, i) => {
    expect(cue.end).toBeGreaterThan(cue.start);
    expect(cue.start).toBeGreaterThanOrEqual(first);
    expect(cue.end).toBeLessThanOrEqual(last + 1e-9);
    // Each cue lies inside one segment (times printed to the millisecond).
    expect(segments.some((s) => cue.start >= s.start - 0.0005 && cue.end <= s.end + 0.0005)).toBe(true);
    if (i > 0) expect(cue.start).toBeGreaterThanOrEqual(cues[i - 1].end);
    if (cue.index !== undefined) expect(cue.index).toBe(i + 1);
  });
}

// 40 words, 16 s, one speaker: must be cut into several cues.
const LONG_TEXT =
  'The committee met on Tuesday to review the budget, and after a long discussion about maintenance costs for the northern bridge it agreed to postpone the vote until the engineers deliver their final report to the council early next month.';

describe('subtitle exports', () => {
  it('splits a 40-word segment into several cues of at most 7 s and two lines of 42 characters', () => {
    expect(LONG_TEXT.split(' ')).toHaveLength(40);
    const result: TranscriptExportSource = { segments: [segment(LONG_TEXT, 1.0, 17.0)], speaker_roles: null, language: 'en' };
    const cues = parseSrt(toSrt(result));
    expect(cues.length).toBeGreaterThanOrEqual(3);
    expectWellFormed(cues, result.segments);
    for (const cue of cues) {
      expect(cue.end - cue.start).toBeLessThanOrEqual(7);
      expect(cue.lines.length).toBeLessThanOrEqual(2);
      for (const line of cue.lines) expect(line.length).toBeLessThanOrEqual(42);
    }
    // Nothing lost or reordered: the cues read back as the segment text.
    expect(cues.map((c) => c.lines.join(' ')).join(' ')).toBe(LONG_TEXT);
    // Cue times come from the words: the first cue starts at the first word, the last ends at the last word.
    const words = result.segments[0].words;
    expect(cues[0].start).toBeCloseTo(words[0].start, 3);
    expect(cues.at(-1)!.end).toBeCloseTo(words.at(-1)!.end, 3);
    // No speakers: no labels.
    expect(cues.some((c) => c.lines[0].startsWith('['))).toBe(false);
  });

  it('breaks a full cue after punctuation when there is a comma in its second half', () => {
    // 20 words over 10 s; the comma after "budget," (word 9) is inside the first 7 s.
    const text = 'we reviewed the proposal for the new city budget, then moved on to the schedule for the public hearings';
    const result: TranscriptExportSource = { segments: [segment(text, 0, 10)] };
    const cues = buildCues(result);
    expect(cues.length).toBeGreaterThan(1);
    expect(cues[0].lines.join(' ').endsWith('budget,')).toBe(true);
    expect(cues[1].lines.join(' ').startsWith('then')).toBe(true);
  });

  it('wraps two-line cues into lines of similar length, and keeps an over-long word whole', () => {
    const text = 'The committee met on Tuesday to review the budget,';
    expect(buildCues({ segments: [segment(text, 0, 4)] })[0].lines).toEqual(['The committee met on Tuesday', 'to review the budget,']);
    const long = 'see https://example.org/a/really/long/path/that/cannot/be/wrapped/anywhere now';
    const lines = buildCues({ segments: [segment(long, 0, 4, null, false)] })[0].lines;
    expect(lines.join(' ')).toBe(long);
    expect(lines).toContain('https://example.org/a/really/long/path/that/cannot/be/wrapped/anywhere');
  });

  it('honours custom limits', () => {
    const result: TranscriptExportSource = { segments: [segment(LONG_TEXT, 0, 16)] };
    const cues = parseVtt(toVtt(result, { maxCueDurationSec: 3, maxLineChars: 30, maxLines: 1 }));
    expectWellFormed(cues, result.segments);
    for (const cue of cues) {
      expect(cue.end - cue.start).toBeLessThanOrEqual(3);
      expect(cue.lines).toHaveLength(1);
      expect(cue.lines[0].length).toBeLessThanOrEqual(30);
    }
    expect(cues.map((c) => c.lines[0]).join(' ')).toBe(LONG_TEXT);
  });

  it('starts a new cue at every speaker change and labels speakers (1-based) in SRT and VTT', () => {
    // One segment whose words change speaker mid-way (WhisperX assigns speakers per word),
    // then a segment of the second speaker.
    const first = segment('so how have you been feeling since the last visit', 0.5, 4.5, 0);
    first.words.slice(6).forEach((w) => (w.speaker_tag = 1));
    const second = segment('much better thank you', 5.0, 6.6, 1);
    const result: TranscriptExportSource = { segments: [first, second], speaker_roles: null };

    const srt = parseSrt(toSrt(result));
    expectWellFormed(srt, result.segments);
    expect(srt.map((c) => c.lines.join(' '))).toEqual([
      '[Speaker 1] so how have you been feeling',
      '[Speaker 2] since the last visit',
      '[Speaker 2] much better thank you',
    ]);
    // The speaker change cuts at the first word of the new speaker.
    expect(srt[1].start).toBeCloseTo(first.words[6].start, 3);
    expect(srt[0].end).toBeLessThanOrEqual(srt[1].start);

    const vtt = parseVtt(toVtt(result));
    expect(vtt.map((c) => vttVoice(c.lines))).toEqual([
      { voice: 'Speaker 1', text: 'so how have you been feeling' },
      { voice: 'Speaker 2', text: 'since the last visit' },
      { voice: 'Speaker 2', text: 'much better thank you' },
    ]);
    expect(vtt.map((c) => [c.start, c.end])).toEqual(srt.map((c) => [c.start, c.end]));
  });

  it('uses speaker_roles names when present, and Speaker N for unnamed speakers', () => {
    const result: TranscriptExportSource = {
      segments: [segment('good morning', 0, 1.2, 0), segment('morning doctor', 1.5, 2.8, 1), segment('a third voice', 3, 4, 2)],
      speaker_roles: { '0': 'provider', '1': 'patient' },
    };
    expect(parseSrt(toSrt(result)).map((c) => c.lines[0])).toEqual(['[provider] good morning', '[patient] morning doctor', '[Speaker 3] a third voice']);
    expect(parseVtt(toVtt(result)).map((c) => vttVoice(c.lines).voice)).toEqual(['provider', 'patient', 'Speaker 3']);
    expect(toText(result)).toBe('provider: good morning\n\npatient: morning doctor\n\nSpeaker 3: a third voice\n');
  });

  it('escapes <, > and & in VTT text and voice names, and keeps them literal in SRT', () => {
    const result: TranscriptExportSource = {
      segments: [segment('if a < b && c > d then <b>stop</b>', 0, 3, 0)],
      speaker_roles: { '0': 'R&D <lead>' },
    };
    const vtt = toVtt(result);
    expect(vtt).toContain('<v R&amp;D &lt;lead&gt;>if a &lt; b &amp;&amp; c &gt; d then &lt;b&gt;stop&lt;/b&gt;</v>');
    const [cue] = parseVtt(vtt);
    expect(vttVoice(cue.lines)).toEqual({ voice: 'R&D <lead>', text: 'if a < b && c > d then <b>stop</b>' });
    expect(parseSrt(toSrt(result))[0].lines.join(' ')).toBe('[R&D <lead>] if a < b && c > d then <b>stop</b>');
  });

  it('uses segments as they are when there are no words', () => {
    const segments = [segment('first sentence here', 0.25, 2.5, null, false), segment('and a second one', 3.125, 5.75, null, false)];
    const cues = parseSrt(toSrt({ segments }));
    expect(cues.map((c) => [c.start, c.end, c.lines.join(' ')])).toEqual([
      [0.25, 2.5, 'first sentence here'],
      [3.125, 5.75, 'and a second one'],
    ]);
  });

  it('never emits a cue with end <= start and stretches short cues without overlapping the next', () => {
    const segments: Segment[] = [
      { start: 1.0, end: 1.0, text: 'uh', speaker_tag: null, confidence: null, words: [] },
      { start: 1.1, end: 2.0, text: 'okay', speaker_tag: null, confidence: null, words: [] },
      { start: 5.0, end: 5.0, text: 'right', speaker_tag: null, confidence: null, words: [{ word: 'right', start: 5.0, end: 5.0, confidence: 0.5, speaker_tag: null }] },
    ];
    const cues = parseVtt(toVtt({ segments }));
    expect(cues.map((c) => [c.start, c.end])).toEqual([
      [1.0, 1.1], // stretched only up to the next cue's start
      [1.1, 2.0],
      [5.0, 5.2], // stretched to the 0.2 s minimum
    ]);
  });

  it('keeps cues ordered and separate when segments overlap (two speakers talking at once)', () => {
    const segments = [segment('i think we should wait', 0, 3, 0), segment('no no', 2.5, 3.5, 1)];
    const cues = parseSrt(toSrt({ segments }));
    expect(cues).toHaveLength(2);
    expect(cues[0].end).toBeLessThanOrEqual(cues[1].start);
    for (const cue of cues) expect(cue.end).toBeGreaterThan(cue.start);
  });

  it('clamps word times that drift outside their segment', () => {
    const seg = segment('drifting words here', 2, 4);
    seg.words[0].start = 1.7;
    seg.words.at(-1)!.end = 4.4;
    const [cue] = parseSrt(toSrt({ segments: [seg] }));
    expect([cue.start, cue.end]).toEqual([2, 4]);
  });

  it('attaches punctuation-only tokens to the previous word and joins CJK words without spaces', () => {
    const words: Word[] = [
      { word: 'Hello', start: 0, end: 0.4, confidence: 1, speaker_tag: null },
      { word: ',', start: 0.4, end: 0.4, confidence: 1, speaker_tag: null },
      { word: ' world', start: 0.5, end: 0.9, confidence: 1, speaker_tag: null },
      { word: '.', start: 0.9, end: 0.9, confidence: 1, speaker_tag: null },
    ];
    expect(buildCues({ segments: [{ start: 0, end: 1, text: 'Hello, world.', speaker_tag: null, confidence: 1, words }] })[0].lines).toEqual(['Hello, world.']);
    const zh: Word[] = ['你好', '世界'].map((w, i) => ({ word: w, start: i, end: i + 0.8, confidence: 1, speaker_tag: null }));
    expect(buildCues({ language: 'zh', segments: [{ start: 0, end: 2, text: '你好世界', speaker_tag: null, confidence: 1, words: zh }] })[0].lines).toEqual(['你好世界']);
  });

  it('prints hours past one hour in both formats', () => {
    const segments = [segment('late remark', 3725.5, 3727.25, null, false)];
    expect(toSrt({ segments })).toContain('01:02:05,500 --> 01:02:07,250');
    expect(toVtt({ segments })).toContain('01:02:05.500 --> 01:02:07.250');
  });

  it('returns just the header for VTT and nothing for SRT when there is no speech', () => {
    expect(toVtt({ segments: [] })).toBe('WEBVTT\n');
    expect(toSrt({ segments: [] })).toBe('');
  });
});

describe('text export', () => {
  it('writes one paragraph per segment without prefixes when there are no speakers', () => {
    const segments = [segment(' First  sentence. ', 0, 1, null, false), segment('Second sentence.', 1, 2, null, false)];
    expect(toText({ segments })).toBe('First sentence.\n\nSecond sentence.\n');
  });

  it('prefixes Speaker N when speakers exist', () => {
    const segments = [segment('Hello there.', 0, 1, 0), segment('Hi.', 1, 2, 1), segment('Unattributed.', 2, 3, null)];
    expect(toText({ segments })).toBe('Speaker 1: Hello there.\n\nSpeaker 2: Hi.\n\nUnattributed.\n');
  });

  it('falls back to the full text without segments', () => {
    expect(toText({ segments: [], text: 'just text' })).toBe('just text\n');
    expect(toText({ segments: [], text: '' })).toBe('');
  });
});

describe('content negotiation', () => {
  it('lets the query parameter win over Accept', () => {
    expect(pickFormat('srt', 'text/vtt')).toBe('srt');
    expect(pickFormat('VTT', undefined)).toBe('vtt');
    expect(pickFormat('json', 'text/plain')).toBe('json');
    expect(pickFormat('txt')).toBe('txt');
  });

  it('reads Accept, including q weights', () => {
    expect(pickFormat(undefined, 'text/vtt')).toBe('vtt');
    expect(pickFormat(undefined, 'application/x-subrip')).toBe('srt');
    expect(pickFormat(undefined, 'text/srt; charset=utf-8')).toBe('srt');
    expect(pickFormat(undefined, 'text/plain')).toBe('txt');
    expect(pickFormat('', 'text/plain')).toBe('txt');
    expect(pickFormat(undefined, 'application/json, text/vtt;q=0.5')).toBe('json');
    expect(pickFormat(undefined, 'text/plain;q=0.2, text/vtt;q=0.8')).toBe('vtt');
    expect(pickFormat(undefined, 'text/vtt;q=0, text/plain')).toBe('txt');
  });

  it('defaults to JSON for no, generic or unknown Accept values', () => {
    expect(pickFormat()).toBe('json');
    expect(pickFormat(undefined, '*/*')).toBe('json');
    expect(pickFormat(undefined, 'text/html,application/xhtml+xml')).toBe('json');
    expect(pickFormat(undefined, 'constructor, toString;q=0.9')).toBe('json');
  });

  it('rejects an unknown format with a coded error listing the accepted formats', () => {
    let error: unknown;
    try {
      pickFormat('docx', 'text/vtt');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ExportFormatError);
    const e = error as ExportFormatError;
    expect(e.code).toBe('UNSUPPORTED_FORMAT');
    expect(e.accepted).toEqual(['json', 'txt', 'srt', 'vtt']);
    expect(e.message).toContain('docx');
    expect(e.message).toContain('json, txt, srt, vtt');
    expect([e.status, e.retryable]).toEqual([400, false]);
    expect(e.toPublic()).toEqual({ code: 'UNSUPPORTED_FORMAT', message: e.message, accepted_formats: ['json', 'txt', 'srt', 'vtt'] });
  });

  // Built by the content-disposition package: a token is left unquoted, anything else quoted and escaped.
  it('gives content types and attachment names from the upload name', () => {
    expect(EXPORT_CONTENT_TYPES).toMatchObject({ txt: 'text/plain; charset=utf-8', srt: 'application/x-subrip; charset=utf-8', vtt: 'text/vtt; charset=utf-8' });
    expect(exportContentDisposition('meeting.2024-05-01.mp3', 'srt')).toBe('attachment; filename=meeting.2024-05-01.srt');
    expect(exportContentDisposition('recording', 'vtt')).toBe('attachment; filename=recording.vtt');
    expect(exportContentDisposition('../a/b"c.wav', 'txt')).toBe('attachment; filename="b\\"c.txt"');
    expect(exportContentDisposition('my call.wav', 'txt')).toBe('attachment; filename="my call.txt"');
    expect(exportContentDisposition('', 'txt')).toBe('attachment; filename=transcript.txt');
    expect(exportContentDisposition('réunion.wav', 'vtt')).toBe(`attachment; filename=r_union.vtt; filename*=UTF-8''r%C3%A9union.vtt`);
    expect(exportContentDisposition('a\u0000b\u202Ec.wav', 'srt')).toBe('attachment; filename=abc.srt');
  });

  it('keeps the whole export name within 200 UTF-8 bytes, extension included', () => {
    const header = exportContentDisposition(`${'会議'.repeat(150)}.wav`, 'vtt');
    const name = decodeURIComponent(/filename\*=UTF-8''(.+)$/.exec(header)![1]);
    expect(name.endsWith('.vtt')).toBe(true);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(200);
    expect(name).toBe(`${'会議'.repeat(32)}会.vtt`);
  });
});
