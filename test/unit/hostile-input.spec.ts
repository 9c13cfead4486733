import { AudioError } from '../../src/audio/audio.errors.js';
import { assertWithinDurationLimit } from '../../src/audio/duration-limit.js';
import { assertDecodableWav, type WavHeader } from '../../src/audio/wav.js';
import { clockTime } from '../../src/common/clock-time.js';
import { MAX_FILENAME_BYTES, safeFilename } from '../../src/common/filename.js';
import { declaredMediaType, servedMediaType } from '../../src/common/media-type.js';
import { hasNoNul } from '../../src/jobs/dto/text-validators.js';
import { chunkPlace, describeChunk, publicFailedReason } from '../../src/transcription/failure.js';

const PCM: WavHeader = { sampleRate: 16_000, channels: 1, bitsPerSample: 16, formatTag: 1, blockAlign: 2, dataOffset: 44, dataBytes: 32_000, dataTruncated: false };
const refusal = (header: Partial<WavHeader>) => {
  try {
    assertDecodableWav({ ...PCM, ...header });
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(AudioError);
    const e = err as AudioError;
    return { code: e.code, status: e.status, message: e.message };
  }
};

describe('WAV header checks at submit (assertDecodableWav)', () => {
  it('accepts PCM, float, A-law and compressed formats ffmpeg reads from WAV', () => {
    expect(refusal({})).toBeNull();
    expect(refusal({ formatTag: 3, bitsPerSample: 32, blockAlign: 4 })).toBeNull();
    expect(refusal({ formatTag: 6, bitsPerSample: 8, blockAlign: 1, sampleRate: 8000 })).toBeNull();
    // MP3 in WAV declares 0 bits per sample: only uncompressed formats need a PCM width.
    expect(refusal({ formatTag: 0x55, bitsPerSample: 0 })).toBeNull();
  });

  it.each([
    ['an unknown format tag', { formatTag: 0x1234 }, 'AUDIO_UNSUPPORTED_FORMAT', /format tag 0x1234, which no decoder handles; accepted: PCM/],
    ['0 bits per sample', { bitsPerSample: 0 }, 'AUDIO_UNSUPPORTED_FORMAT', /0 bits per sample for PCM; accepted: 8, 16, 24, 32, 64/],
    ['12-bit float', { formatTag: 3, bitsPerSample: 12 }, 'AUDIO_UNSUPPORTED_FORMAT', /12 bits per sample for IEEE float; accepted: 32, 64/],
    ['a 1 Hz sample rate', { sampleRate: 1 }, 'AUDIO_UNSUPPORTED_FORMAT', /sample rate of 1 Hz; accepted: 1000–768000 Hz/],
    ['a 4 GHz sample rate', { sampleRate: 4_000_000_000 }, 'AUDIO_UNSUPPORTED_FORMAT', /sample rate of 4000000000 Hz/],
    ['a header without samples', { dataBytes: 0 }, 'AUDIO_NO_SAMPLES', /holds no audio samples/],
  ])('refuses %s with a 422 that names the field', (_name, header, code, message) => {
    expect(refusal(header)).toMatchObject({ code, status: 422, message: expect.stringMatching(message) });
  });
});

describe('duration limit (MAX_AUDIO_DURATION_SECONDS)', () => {
  it('names the limit and the duration, and lets shorter or unknown durations through', () => {
    expect(() => assertWithinDurationLimit(14_400, 14_400)).not.toThrow();
    expect(() => assertWithinDurationLimit(null, 60)).not.toThrow();
    expect(() => assertWithinDurationLimit(99_999, 0)).not.toThrow();
    const err = (() => {
      try {
        assertWithinDurationLimit(10_800, 3600);
      } catch (e) {
        return e as AudioError;
      }
      throw new Error('not refused');
    })();
    expect(err).toMatchObject({ code: 'AUDIO_TOO_LONG', status: 413 });
    expect(err.message).toBe('the recording is 3:00:00 long (10800.0 s); the limit is 1:00:00 (3600 s, MAX_AUDIO_DURATION_SECONDS): split it into parts of at most that length');
    expect(err.toPublic()).toMatchObject({ duration_sec: 10_800, max_duration_sec: 3600 });
    expect(() => assertWithinDurationLimit(61, 60, true)).toThrow(/the recording is longer than 1:00; the limit is 1:00/);
  });

  it('writes times as h:mm:ss or m:ss', () => {
    expect([clockTime(0), clockTime(59.9), clockTime(300), clockTime(3725), clockTime(-3)]).toEqual(['0:00', '0:59', '5:00', '1:02:05', '0:00']);
  });
});

describe('media types', () => {
  it('stores a declared type as its lower-case essence, or null when malformed or over 255 characters', () => {
    expect(declaredMediaType('Audio/WAV; codecs=1')).toBe('audio/wav');
    expect(declaredMediaType(`audio/${'x'.repeat(300)}`)).toBeNull();
    expect(declaredMediaType('not a type')).toBeNull();
    expect(declaredMediaType('text/html\u0000')).toBeNull();
    expect(declaredMediaType(undefined)).toBeNull();
  });

  it('serves what was detected (ffprobe or music-metadata names), never a declared text/html', () => {
    expect(servedMediaType({ format: 'wav', codec: 'pcm_s16le', has_video: false })).toBe('audio/wav');
    expect(servedMediaType({ format_name: 'wav' })).toBe('audio/wav');
    expect(servedMediaType({ format_name: 'WAVE' })).toBe('audio/wav');
    expect(servedMediaType({ format_name: 'mov,mp4,m4a,3gp,3g2,mj2', has_video: true })).toBe('video/mp4');
    expect(servedMediaType({ format_name: 'mov,mp4,m4a,3gp,3g2,mj2', has_video: false })).toBe('audio/mp4');
    expect(servedMediaType({ format_name: 'matroska,webm', has_video: true })).toBe('video/webm');
    expect(servedMediaType({ format_name: 'EBML/webm' })).toBe('audio/webm');
    expect(servedMediaType({ format_name: 'mp3' })).toBe('audio/mpeg');
    expect(servedMediaType({ format_name: 'html' })).toBe('application/octet-stream');
    expect(servedMediaType({})).toBe('application/octet-stream');
    expect(servedMediaType(null)).toBe('application/octet-stream');
  });
});

describe('text fields and file names', () => {
  it('finds U+0000 in strings and lists of strings only', () => {
    expect(hasNoNul('plain')).toBe(true);
    expect(hasNoNul('a\u0000b')).toBe(false);
    expect(hasNoNul(['a', 'b\u0000'])).toBe(false);
    expect(hasNoNul(42)).toBe(true);
  });

  it('keeps every file name within the byte budget, cut on a code-point boundary', () => {
    for (const name of ['a'.repeat(300), 'ü'.repeat(200), '会'.repeat(255), '🎙'.repeat(120), `${'é'.repeat(150)}.wav`, 'e\u0301'.repeat(200), '\ud800'.repeat(100)]) {
      const safe = safeFilename(name);
      expect(Buffer.byteLength(safe, 'utf8')).toBeLessThanOrEqual(MAX_FILENAME_BYTES);
      // Round-trips through UTF-8 unchanged: no half code point at the cut.
      expect(Buffer.from(safe, 'utf8').toString('utf8')).toBe(safe);
      expect(safe.length).toBeGreaterThan(0);
    }
    expect(safeFilename(`${'é'.repeat(150)}.wav`)).toMatch(/^é+\.wav$/);
  });
});

describe('failure messages in the user\'s words', () => {
  it('translates BullMQ reasons that name queue keys', () => {
    expect(publicFailedReason('child gateway:chunks-pocketsphinx:3f1e0c9a-7a53-4f43-9f7e-2b1d8a6c0e11-p5 failed')).toBe('chunk 6 of the recording failed');
    expect(publicFailedReason('job stalled more than allowable limit')).toBe('the worker running it stopped responding too many times');
    expect(publicFailedReason('pocketsphinx exited with 1')).toBe('pocketsphinx exited with 1');
    expect(publicFailedReason(null)).toBe('unknown error');
  });

  it('places a chunk in the recording: speech spans, or offset and length', () => {
    const piece = { index: 5, channel: null, offset: 300, core_start: 300, core_end: 360 };
    expect(describeChunk(chunkPlace({ piece, durationSec: 60, total: 10 }))).toBe('chunk 6 of 10 (recording 5:00–6:00)');
    const speechChunk = { index: 5, spans: [{ start: 310, end: 330 }, { start: 400, end: 425 }] } as never;
    expect(describeChunk(chunkPlace({ piece, speechChunk, durationSec: 45.5, total: 10 }))).toBe('chunk 6 of 10 (recording 5:10–7:05)');
  });
});
