import { contentDisposition, dispositionFilename } from '../../src/common/content-disposition.js';
import { MAX_FILENAME_BYTES, safeFilename, truncateUtf8 } from '../../src/common/filename.js';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('safeFilename', () => {
  it.each<[string, string]>([
    ['call 1.mp3', 'call 1.mp3'],
    ['../../etc/passwd', 'passwd'],
    ['..\\..\\x.wav', 'x.wav'],
    ['C:\\Users\\me\\rec.wav', 'rec.wav'],
    ['.hidden', 'hidden'],
    ['...', 'audio'],
    ['', 'audio'],
    ['   ', 'audio'],
    ['dir/', 'audio'],
    ['  spaced .wav  ', 'spaced .wav'],
    ['trailing.', 'trailing'],
    ['tab\there\u0000.wav', 'tabhere.wav'],
    ['c1\u0085\u009f.wav', 'c1.wav'],
    // A right-to-left override would display this as "invoice‮vaw.exe" → "invoiceexe.wav".
    ['invoice\u202Evaw.exe', 'invoicevaw.exe'],
    // NFD (as macOS sends it) becomes NFC.
    ['re\u0301union.wav', 'r\u00e9union.wav'],
  ])('%j → %j', (input, expected) => {
    expect(safeFilename(input)).toBe(expected);
  });

  it('falls back to audio, or to the given fallback, for null and empty names', () => {
    expect(safeFilename(null)).toBe('audio');
    expect(safeFilename(undefined, { fallback: 'transcript' })).toBe('transcript');
  });

  it('limits a 300-character CJK and emoji name to 200 UTF-8 bytes, on a character boundary, keeping the extension', () => {
    const name = `${'録音テスト🎙️👩‍👩‍👧'.repeat(30)}.flac`;
    expect([...name].length).toBeGreaterThanOrEqual(300);
    expect(bytes(name)).toBeGreaterThan(900);
    const safe = safeFilename(name);
    expect(bytes(safe)).toBeLessThanOrEqual(MAX_FILENAME_BYTES);
    expect(bytes(safe)).toBeGreaterThan(MAX_FILENAME_BYTES - 30);
    expect(safe.endsWith('.flac')).toBe(true);
    // No lone surrogate (a cut code point) and no broken emoji sequence: the stem is a prefix made of whole graphemes.
    expect(safe).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    expect(Buffer.from(safe, 'utf8').toString('utf8')).toBe(safe);
    const stem = safe.slice(0, -'.flac'.length);
    expect(name.startsWith(stem)).toBe(true);
    const graphemes = [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(name)].map((g) => g.segment);
    let prefix = '';
    for (const g of graphemes) {
      if (prefix === stem) break;
      prefix += g;
    }
    expect(prefix).toBe(stem);
  });

  it('limits a 300-character CJK name without extension', () => {
    const safe = safeFilename('音'.repeat(300));
    expect(safe).toBe('音'.repeat(66));
    expect(bytes(safe)).toBe(198);
  });

  it('keeps a name already within the limit, counting bytes rather than characters', () => {
    const ascii = `${'a'.repeat(196)}.wav`;
    expect(safeFilename(ascii)).toBe(ascii);
    // 100 characters, but 300 bytes.
    expect(bytes(safeFilename('é'.repeat(50) + '音'.repeat(50)))).toBeLessThanOrEqual(200);
  });
});

describe('truncateUtf8', () => {
  it('never cuts inside a code point, and cuts inside an over-long grapheme only between code points', () => {
    expect(truncateUtf8('aé', 2)).toBe('a');
    expect(truncateUtf8('🎙️x', 4)).toBe('🎙');
    expect(truncateUtf8('abc', 3)).toBe('abc');
  });
});

describe('contentDisposition (content-disposition package)', () => {
  it('builds inline and attachment values with an ASCII fallback for other names', () => {
    expect(contentDisposition('rec.wav', { type: 'inline' })).toBe('inline; filename=rec.wav');
    expect(contentDisposition('my rec.wav', { type: 'attachment' })).toBe('attachment; filename="my rec.wav"');
    expect(contentDisposition('réunion.mp3', { type: 'inline' })).toBe(`inline; filename=r_union.mp3; filename*=UTF-8''r%C3%A9union.mp3`);
    expect(contentDisposition('会議🎙.wav', { type: 'attachment' })).toBe(`attachment; filename=___.wav; filename*=UTF-8''%E4%BC%9A%E8%AD%B0%F0%9F%8E%99.wav`);
    // A name that looks percent-encoded goes to filename* so clients do not decode it.
    expect(contentDisposition('a%20b.wav', { type: 'attachment' })).toBe(`attachment; filename=a%20b.wav; filename*=UTF-8''a%2520b.wav`);
  });

  it('round-trips through the parser', () => {
    for (const name of ['rec.wav', 'my "best" call.wav', 'réunion.mp3', '会議🎙.wav']) {
      expect(dispositionFilename(contentDisposition(name, { type: 'attachment' }))).toBe(name);
    }
  });
});

describe('dispositionFilename (content-disposition package)', () => {
  it.each<[string | undefined, string | null]>([
    ['attachment; filename="call 1.mp3"', 'call 1.mp3'],
    ['inline; filename=plain.ogg', 'plain.ogg'],
    ['attachment; filename="q\\"uote.wav"', 'q"uote.wav'],
    ["attachment; filename*=UTF-8''na%C3%AFve.wav; filename=\"naive.wav\"", 'naïve.wav'],
    ["attachment; filename=\"naive.wav\"; filename*=utf-8''na%C3%AFve.wav", 'naïve.wav'],
    ["attachment; filename*=iso-8859-1'fr'%E9t%E9.mp3", 'été.mp3'],
    ["attachment; filename*=UTF-8''bad%E9; filename=fallback.wav", 'fallback.wav'],
    ['attachment', null],
    ['', null],
    [undefined, null],
  ])('%j → %j', (value, expected) => {
    expect(dispositionFilename(value)).toBe(expected);
  });
});
