import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AudioError } from '../../src/audio/audio.errors.js';
import { AudioService } from '../../src/audio/audio.service.js';
import { fixture, scratchDir, testConfig } from '../support/env.js';

/** Reads the fmt chunk of a canonical WAV: [sample rate, channels, bits per sample]. */
function wavFormat(file: string): [number, number, number] {
  const h = readFileSync(file).subarray(0, 44);
  return [h.readUInt32LE(24), h.readUInt16LE(22), h.readUInt16LE(34)];
}

describe('AudioService (real ffmpeg/ffprobe)', () => {
  const audio = new AudioService(testConfig());
  const dir = scratchDir('audio');

  it('probes a WAV and an MP3', async () => {
    expect(await audio.probe(fixture('libri_0870.wav'))).toMatchObject({ format_name: 'wav', codec: 'pcm_s16le', sample_rate: 16000, channels: 1, has_video: false });
    const mp3 = await audio.probe(fixture('jfk.mp3'));
    expect(mp3).toMatchObject({ format_name: 'mp3', codec: 'mp3' });
    expect(mp3.duration_sec).toBeCloseTo(11, 0);
  });

  it('decodes stereo 44.1 kHz FLAC to 16 kHz mono s16le WAV and measures duration and peak', async () => {
    const flac = path.join(dir, 'stereo44k.flac');
    execFileSync('ffmpeg', ['-v', 'error', '-i', fixture('fw_stereo_diarization.wav'), '-ar', '44100', flac]);
    const probe = await audio.probe(flac);
    expect(probe).toMatchObject({ channels: 2, sample_rate: 44100, codec: 'flac' });
    const out = await audio.normalize(flac, path.join(dir, 'out.wav'));
    expect(wavFormat(out.path)).toEqual([16000, 1, 16]);
    expect(out.duration_sec).toBeCloseTo(5, 1);
    expect(out.max_volume_db).toBeLessThan(0);
    expect(out.max_volume_db).toBeGreaterThan(-30);
  });

  it('extracts audio from a video container', async () => {
    const mkv = path.join(dir, 'clip.mkv');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=s=64x48:d=3', '-i', fixture('goforward.wav'), '-shortest', '-c:v', 'libx264', '-c:a', 'libopus', mkv]);
    expect((await audio.probe(mkv)).has_video).toBe(true);
    const out = await audio.normalize(mkv, path.join(dir, 'mkv.wav'));
    expect(wavFormat(out.path)).toEqual([16000, 1, 16]);
    expect(out.duration_sec).toBeGreaterThan(2.5);
  });

  it('reports digital silence as a very low peak', async () => {
    const silence = path.join(dir, 'silence.wav');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'anullsrc=r=48000:cl=stereo', '-t', '2', silence]);
    const out = await audio.normalize(silence, path.join(dir, 'silence16k.wav'));
    expect(out.max_volume_db).toBeLessThanOrEqual(-90);
  });

  it('names the problem with a coded error', async () => {
    const text = path.join(dir, 'text.mp3');
    execFileSync('sh', ['-c', `echo not audio > ${text}`]);
    await expect(audio.probe(text)).rejects.toMatchObject({ code: 'AUDIO_UNREADABLE' });
    await expect(audio.normalize(text, path.join(dir, 'x.wav'))).rejects.toBeInstanceOf(AudioError);
  });

  it('keeps the file\'s path (which ffmpeg quotes) out of messages and public fields, in details only', async () => {
    const text = path.join(dir, 'upload-4f2c.mp3');
    writeFileSync(text, 'not audio at all\n');
    const unreadable = (await audio.probe(text).catch((e: unknown) => e)) as AudioError;
    expect(unreadable).toMatchObject({ code: 'AUDIO_UNREADABLE', status: 415, details: { path: text } });
    expect(unreadable.message).toMatch(/^not a readable audio or video file \(ffprobe: .+\)$/);
    expect(String(unreadable.details.stderr_tail)).toContain(text);
    const output = path.join(dir, 'decoded-4f2c.wav');
    const undecodable = (await audio.normalize(text, output).catch((e: unknown) => e)) as AudioError;
    expect(undecodable).toMatchObject({ code: 'AUDIO_DECODE_FAILED', status: 422, details: { input: text, output } });
    for (const error of [unreadable, undecodable]) {
      expect(JSON.stringify(error.toPublic())).not.toContain(dir);
      expect(error.toPublic()).toMatchObject({ accepted: 'any audio or video file ffmpeg can decode, with at least one audio stream' });
    }
  });

  it('measures the decoded duration from the WAV header', async () => {
    const out = await audio.normalize(fixture('jfk.wav'), path.join(dir, 'jfk16k.wav'));
    expect(out.duration_sec).toBe(11);
  });
});
