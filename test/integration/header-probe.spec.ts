import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AudioError } from '../../src/audio/audio.errors.js';
import { AudioService } from '../../src/audio/audio.service.js';
import { LocalStorageDriver } from '../../src/storage/local-storage.driver.js';
import { truncationWarning } from '../../src/transcription/transcription.service.js';
import { fixture, scratchDir, testConfig } from '../support/env.js';

/** ffmpeg with errors only; throws when it fails. */
const ffmpeg = (...args: string[]) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...args]);

/** The first `bytes` bytes of `source`, written to `target`. */
function cut(source: string, target: string, bytes: number): string {
  writeFileSync(target, readFileSync(source).subarray(0, bytes));
  return target;
}

describe('submission probe: container header in-process, ffprobe where the header cannot tell (real files, real ffprobe)', () => {
  const header = new AudioService(testConfig({ INGEST_PROBE: 'header' }));
  const ffprobeOnly = new AudioService(testConfig({ INGEST_PROBE: 'ffprobe' }));
  const dir = scratchDir('header-probe');
  const file = (name: string) => path.join(dir, name);

  beforeAll(() => {
    ffmpeg('-i', fixture('jfk.wav'), '-c:a', 'flac', file('jfk.flac'));
    ffmpeg('-i', fixture('fw_stereo_diarization.wav'), '-ar', '44100', '-c:a', 'flac', file('stereo44k.flac'));
    ffmpeg('-i', fixture('jfk.wav'), '-c:a', 'libmp3lame', '-b:a', '64k', file('jfk-cbr.mp3'));
    ffmpeg('-i', fixture('jfk.wav'), '-c:a', 'libopus', file('jfk.ogg'));
    ffmpeg('-i', fixture('jfk.wav'), '-c:a', 'aac', file('jfk.m4a'));
    ffmpeg('-f', 'lavfi', '-i', 'testsrc=s=64x48:d=3', '-i', fixture('goforward.wav'), '-shortest', '-c:v', 'libx264', '-c:a', 'libopus', file('clip.mkv'));
    ffmpeg('-i', fixture('fw_stereo_diarization.wav'), '-c:a', 'pcm_f32le', file('float.wav'));
    ffmpeg('-i', fixture('jfk.wav'), '-c:a', 'pcm_u8', file('jfk-u8.wav'));
    ffmpeg('-i', fixture('fw_stereo_diarization.wav'), '-c:a', 'pcm_s24le', file('stereo24.wav'));
    // A 40 kB LIST chunk before the samples: the data chunk's header lies past the bytes read first.
    ffmpeg('-i', fixture('goforward.wav'), '-metadata', `comment=${'x'.repeat(40_000)}`, '-c:a', 'pcm_s16le', file('long-list.wav'));
  });

  it.each([
    ['goforward.wav', () => fixture('goforward.wav')],
    ['a stereo WAV', () => fixture('fw_stereo_diarization.wav')],
    ['a VBR MP3 (Xing header)', () => fixture('jfk.mp3')],
    ['a CBR MP3 (Info header)', () => file('jfk-cbr.mp3')],
    ['a FLAC', () => file('jfk.flac')],
    ['a stereo 44.1 kHz FLAC', () => file('stereo44k.flac')],
    ['an Ogg Opus file', () => file('jfk.ogg')],
    ['a WAV with a LIST chunk before its samples', () => fixture('jfk.wav')],
    ['a WAV whose samples start past the first 32 kB', () => file('long-list.wav')],
    ['an 8-bit WAV', () => file('jfk-u8.wav')],
    ['a 24-bit stereo WAV', () => file('stereo24.wav')],
    ['a float WAV that ffmpeg writes as WAVE_FORMAT_EXTENSIBLE', () => file('float.wav')],
  ])('reads %s from its header, with the facts ffprobe gives', async (_name, path) => {
    const fromHeader = await header.probe(path());
    const fromFfprobe = await ffprobeOnly.probe(path());
    expect(fromHeader.probed_by).toBe('header');
    expect(fromFfprobe.probed_by).toBe('ffprobe');
    const { duration_sec: d1, probed_by: _a, ...rest1 } = fromHeader;
    const { duration_sec: d2, probed_by: _b, ...rest2 } = fromFfprobe;
    expect(rest1).toEqual(rest2);
    expect(d1).not.toBeNull();
    expect(Math.abs(d1! - d2!)).toBeLessThan(0.1);
  });

  it.each([
    ['an M4A (its sample entry may claim 2 channels for mono AAC)', () => file('jfk.m4a'), { channels: 1, has_video: false }],
    ['a video (Matroska)', () => file('clip.mkv'), { has_video: true }],
  ])('leaves %s to ffprobe', async (_name, path, expected) => {
    expect(await header.probe(path())).toMatchObject({ ...expected, probed_by: 'ffprobe' });
  });

  it('answers the same coded errors as ffprobe for what is not audio', async () => {
    writeFileSync(file('notes.wav'), 'this is a text file pretending to be audio\n');
    cut(fixture('jfk.wav'), file('header-only.wav'), 30);
    writeFileSync(file('empty.mp3'), Buffer.alloc(0));
    ffmpeg('-f', 'lavfi', '-i', 'color=c=red:s=64x48:d=1', '-c:v', 'libx264', file('silent.mp4'));
    for (const [name, code] of [['notes.wav', 'AUDIO_UNREADABLE'], ['header-only.wav', 'AUDIO_UNREADABLE'], ['empty.mp3', 'AUDIO_EMPTY'], ['silent.mp4', 'AUDIO_NO_STREAM']]) {
      const [a, b] = await Promise.all([header.probe(file(name)).catch((e: unknown) => e), ffprobeOnly.probe(file(name)).catch((e: unknown) => e)]) as AudioError[];
      expect({ name, code: a.code, message: a.message }).toEqual({ name, code, message: b.message });
    }
  });

  describe('truncated files (the first bytes of a real recording)', () => {
    it('refuses the first 20 kB of an 11 s VBR MP3 at submit, naming both lengths', async () => {
      const err = (await header.probe(cut(fixture('jfk.mp3'), file('jfk-20k.mp3'), 20_000)).catch((e: unknown) => e)) as AudioError;
      expect(err).toMatchObject({ code: 'AUDIO_TRUNCATED', status: 422 });
      expect(err.message).toMatch(/^the MP3 file is truncated: its header declares \d+ bytes of audio \(11\.1 s\) but \d+ arrived \(about 2\.\d s\)$/);
      expect(err.toPublic()).toMatchObject({ claimed_duration_sec: 11.088, size_bytes: 20_000 });
    });

    it('refuses a cut CBR MP3 (LAME Info header)', async () => {
      const err = (await header.probe(cut(file('jfk-cbr.mp3'), file('cbr-cut.mp3'), 30_000)).catch((e: unknown) => e)) as AudioError;
      expect(err).toMatchObject({ code: 'AUDIO_TRUNCATED' });
      expect(err.message).toMatch(/\(11\.1 s\) but \d+ arrived \(about 3\.\d s\)/);
    });

    it('refuses a cut WAV by its RIFF size, and one whose RIFF size was patched by its data chunk', async () => {
      await expect(header.probe(cut(fixture('jfk.wav'), file('cut.wav'), 100_000))).rejects.toMatchObject({
        code: 'AUDIO_TRUNCATED',
        message: 'the WAV file is truncated: its header declares 352078 bytes but 100000 arrived',
      });
      const patched = readFileSync(file('cut.wav'));
      patched.writeUInt32LE(patched.length - 8, 4);
      writeFileSync(file('patched.wav'), patched);
      await expect(header.probe(file('patched.wav'))).rejects.toMatchObject({ code: 'AUDIO_TRUNCATED', message: expect.stringMatching(/data chunk declares more samples than the file holds \(3\.1 s arrived\)/) });
    });

    it('accepts a cut FLAC at submit (its length is not bounded by its size), and the intake warns with both durations', async () => {
      const flac = cut(file('jfk.flac'), file('cut.flac'), 60_000);
      const probe = await header.probe(flac);
      expect(probe).toMatchObject({ format_name: 'flac', duration_sec: 11, probed_by: 'header' });
      const decoded = await header.normalize(flac, file('cut-decoded.wav'));
      expect(decoded.duration_sec).toBeGreaterThan(1);
      expect(decoded.duration_sec).toBeLessThan(6);
      expect(truncationWarning(probe.duration_sec ?? undefined, decoded.duration_sec)).toBe(
        `the recording looks truncated: its header claims 11.0 s but only ${decoded.duration_sec.toFixed(1)} s of audio could be decoded; the transcript covers those ${decoded.duration_sec.toFixed(1)} s`,
      );
    });

    it('does not warn when the decoded length matches the claim within 1 s or 5 %', () => {
      expect(truncationWarning(11.088, 11.0)).toBeNull();
      expect(truncationWarning(600, 575)).toBeNull();
      expect(truncationWarning(undefined, 3)).toBeNull();
      expect(truncationWarning(600, 560)).toMatch(/claims 600\.0 s but only 560\.0 s/);
    });
  });

  it('decoding a file whose header reads well but whose audio data is garbage fails with AUDIO_DECODE_FAILED', async () => {
    const garbage = file('garbage.flac');
    writeFileSync(garbage, Buffer.concat([readFileSync(file('jfk.flac')).subarray(0, 8192), Buffer.alloc(200_000, 0x5a)]));
    expect(await header.probe(garbage)).toMatchObject({ format_name: 'flac', probed_by: 'header' });
    await expect(header.normalize(garbage, file('garbage.wav'))).rejects.toMatchObject({ code: 'AUDIO_DECODE_FAILED', status: 422 });
  });
});

describe('LocalStorageDriver move', () => {
  it('moves a file into place (no copy left behind) and keeps its bytes', async () => {
    const root = scratchDir('storage-move');
    const storage = new LocalStorageDriver(path.join(root, 'data'));
    const upload = path.join(root, 'upload-1');
    await writeFile(upload, readFileSync(fixture('goforward.wav')));
    await expect(storage.put('audio/t1/goforward.wav', upload, { contentType: 'audio/wav', move: true })).resolves.toEqual({ size_bytes: statSync(fixture('goforward.wav')).size, moved: true });
    expect(existsSync(upload)).toBe(false);
    expect(await readFile(path.join(root, 'data', 'audio/t1/goforward.wav'))).toEqual(readFileSync(fixture('goforward.wav')));
  });

  it('leaves no directory behind when the move fails (a file name over the file system\'s 255 bytes)', async () => {
    const root = scratchDir('storage-move-fail');
    const storage = new LocalStorageDriver(path.join(root, 'data'));
    const upload = path.join(root, 'upload-3');
    await writeFile(upload, readFileSync(fixture('goforward.wav')));
    await expect(storage.put(`audio/t3/${'é'.repeat(150)}.wav`, upload, { contentType: 'audio/wav', move: true })).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect(existsSync(upload)).toBe(true);
    expect(existsSync(path.join(root, 'data', 'audio', 't3'))).toBe(false);
  });

  it('copies across file systems (rename fails with EXDEV) and leaves the source to the caller', async () => {
    const root = scratchDir('storage-exdev');
    // /dev/shm is a tmpfs: another file system than the scratch directory's on these machines.
    expect(statSync('/dev/shm').dev).not.toBe(statSync(root).dev);
    const shm = await mkdtemp('/dev/shm/gw-move-');
    const storage = new LocalStorageDriver(path.join(root, 'data'));
    const upload = path.join(shm, 'upload-2');
    await writeFile(upload, readFileSync(fixture('goforward.wav')));
    await storage.put('audio/t2/goforward.wav', upload, { contentType: 'audio/wav', move: true });
    expect(await readFile(path.join(root, 'data', 'audio/t2/goforward.wav'))).toEqual(readFileSync(fixture('goforward.wav')));
    expect(await storage.list('audio/t2/')).toEqual(['audio/t2/goforward.wav']);
    await rm(shm, { recursive: true, force: true });
  });
});
