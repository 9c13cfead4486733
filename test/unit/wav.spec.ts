import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AudioError } from '../../src/audio/audio.errors.js';
import { pcmDataRange, PCM_WAV_HEADER_BYTES, readWavHeader, wavHeader } from '../../src/audio/wav.js';
import { fixture, scratchDir } from '../support/env.js';

const ffmpeg = (...args: string[]) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...args]);

/** Builds a WAV: RIFF header, fmt chunk, optional extra chunks before data, data. */
function wav(opts: { rate?: number; channels?: number; bits?: number; format?: number; extra?: Buffer; samples?: number; dataSize?: number } = {}): Buffer {
  const { rate = 16000, channels = 1, bits = 16, format = 1, extra = Buffer.alloc(0), samples = 10 } = opts;
  const data = Buffer.alloc(samples * channels * (bits / 8), 7);
  const fmt = Buffer.alloc(24);
  fmt.write('fmt ', 0, 'ascii');
  fmt.writeUInt32LE(16, 4);
  fmt.writeUInt16LE(format, 8);
  fmt.writeUInt16LE(channels, 10);
  fmt.writeUInt32LE(rate, 12);
  fmt.writeUInt32LE(rate * channels * (bits / 8), 16);
  fmt.writeUInt16LE(channels * (bits / 8), 20);
  fmt.writeUInt16LE(bits, 22);
  const dataHeader = Buffer.alloc(8);
  dataHeader.write('data', 0, 'ascii');
  dataHeader.writeUInt32LE(opts.dataSize ?? data.length, 4);
  const body = Buffer.concat([Buffer.from('WAVE', 'ascii'), fmt, extra, dataHeader, data]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'ascii');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

describe('readWavHeader', () => {
  const dir = scratchDir('wav');

  it.each([
    ['jfk.wav', 1],
    ['goforward.wav', 1],
    ['tts/dialogue_2spk.wav', 1],
    ['fw_stereo_diarization.wav', 2],
  ])('reads the fixture %s: format, and samples up to the end of the file', async (name, channels) => {
    const file = fixture(name);
    const bytes = readFileSync(file);
    const header = await readWavHeader(file);
    expect(header).toMatchObject({ sampleRate: 16000, channels, bitsPerSample: 16, formatTag: 1, blockAlign: 2 * channels });
    expect(bytes.toString('ascii', header.dataOffset - 8, header.dataOffset - 4)).toBe('data');
    expect(header.dataOffset + header.dataBytes).toBe(statSync(file).size);
    // The same from the bytes as from the path.
    expect(await readWavHeader(readFileSync(file))).toEqual(header);
  });

  it('finds the samples after the LIST chunk of the jfk.wav fixture (written by Lavf59)', async () => {
    expect(await readWavHeader(fixture('jfk.wav'))).toMatchObject({ dataOffset: 78, dataBytes: 352_000 });
  });

  it('skips the LIST chunk ffmpeg writes without +bitexact, and agrees with ffprobe on the duration', async () => {
    const out = path.join(dir, 'list.wav');
    ffmpeg('-i', fixture('jfk.mp3'), '-ac', '1', '-ar', '16000', '-c:a', 'pcm_s16le', '-metadata', 'title=Inaugural address', out);
    const bytes = readFileSync(out);
    expect(bytes.includes(Buffer.from('LIST'))).toBe(true);
    const header = await readWavHeader(out);
    expect(header.dataOffset).toBeGreaterThan(44);
    expect(bytes.toString('ascii', header.dataOffset - 8, header.dataOffset - 4)).toBe('data');
    expect(header.dataOffset + header.dataBytes).toBe(bytes.length);
    const probed = Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=duration', '-of', 'csv=p=0', out]).toString());
    expect(header.dataBytes / (header.sampleRate * header.blockAlign)).toBeCloseTo(probed, 3);
  });

  it('reads the sub-format of WAVE_FORMAT_EXTENSIBLE and non-PCM formats', async () => {
    const extensible = path.join(dir, 'ext.wav');
    ffmpeg('-i', fixture('fw_stereo_diarization.wav'), '-af', 'pan=3.0|c0=c0|c1=c1|c2=c0', '-c:a', 'pcm_s24le', extensible);
    expect(readFileSync(extensible).readUInt16LE(20)).toBe(0xfffe);
    expect(await readWavHeader(extensible)).toMatchObject({ formatTag: 1, channels: 3, bitsPerSample: 24, blockAlign: 9 });
    const float = path.join(dir, 'float.wav');
    ffmpeg('-i', fixture('goforward.wav'), '-ar', '44100', '-c:a', 'pcm_f32le', float);
    expect(await readWavHeader(float)).toMatchObject({ formatTag: 3, sampleRate: 44100, bitsPerSample: 32, blockAlign: 4 });
  });

  it('reads to the end of the file when the data size is unknown (0 or 0xFFFFFFFF), and drops a partial frame', async () => {
    expect((await readWavHeader(wav({ samples: 4, dataSize: 0xffffffff }))).dataBytes).toBe(8);
    expect((await readWavHeader(wav({ samples: 4, dataSize: 0 }))).dataBytes).toBe(8);
    const odd = Buffer.concat([wav({ samples: 4 }), Buffer.from([1])]);
    expect((await readWavHeader(odd)).dataBytes).toBe(8);
    // A header that declares more than arrived: what arrived, and marked as cut off.
    expect(await readWavHeader(wav({ samples: 4, dataSize: 1000 }))).toMatchObject({ dataBytes: 8, dataTruncated: true });
    expect(await readWavHeader(wav({ samples: 4 }))).toMatchObject({ dataBytes: 8, dataTruncated: false });
    expect((await readWavHeader(wav({ samples: 4, dataSize: 0xffffffff }))).dataTruncated).toBe(false);
  });

  it('reads a file whose first bytes are already in memory: from them where they suffice, from the file past them', async () => {
    const file = path.join(dir, 'head.wav');
    const list = Buffer.concat([Buffer.from('LIST', 'ascii'), Buffer.alloc(4), Buffer.alloc(5000, 0x20)]);
    list.writeUInt32LE(5000, 4);
    const bytes = wav({ extra: list, samples: 1000 });
    writeFileSync(file, bytes);
    const whole = await readWavHeader(file);
    expect(whole).toMatchObject({ dataOffset: 44 + 5008, dataBytes: 2000, dataTruncated: false });
    // The data chunk's header lies past a 64-byte head: read from the file.
    expect(await readWavHeader({ path: file, head: bytes.subarray(0, 64), size: bytes.length })).toEqual(whole);
    // A head that holds every chunk header: the file is never opened (a path that does not exist proves it).
    expect(await readWavHeader({ path: path.join(dir, 'missing.wav'), head: bytes.subarray(0, 6000), size: bytes.length })).toEqual(whole);
  });

  it('skips odd-sized chunks (padded to even) before data', async () => {
    const list = Buffer.concat([Buffer.from('LIST', 'ascii'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc\0', 'ascii')]);
    expect(await readWavHeader(wav({ extra: list, samples: 4 }))).toMatchObject({ dataOffset: 44 + 12, dataBytes: 8 });
  });

  it.each([
    ['not RIFF at all', Buffer.from('OggS\0\0\0\0\0\0\0\0\0\0'), /not a RIFF\/WAVE file/],
    ['a RIFF that is not WAVE', Buffer.concat([Buffer.from('RIFF\x04\0\0\0AVI ', 'latin1')]), /not a RIFF\/WAVE file/],
    ['no data chunk', wav().subarray(0, 36), /no data chunk/],
    ['no fmt chunk', Buffer.concat([Buffer.from('RIFF\x0c\0\0\0WAVEdata\0\0\0\0', 'latin1')]), /data chunk before fmt chunk/],
    ['a truncated fmt chunk', wav().subarray(0, 26), /truncated fmt chunk/],
  ])('throws AudioError AUDIO_UNREADABLE for %s', async (_name, bytes, message) => {
    const error = await readWavHeader(bytes).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AudioError);
    expect(error).toMatchObject({ code: 'AUDIO_UNREADABLE', status: 415, message: expect.stringMatching(message) });
  });

  it('keeps the path out of the message of a file it cannot read as WAV', async () => {
    const mp3 = fixture('jfk.mp3');
    const error = (await readWavHeader(mp3).catch((e: unknown) => e)) as AudioError;
    expect(error.code).toBe('AUDIO_UNREADABLE');
    expect(JSON.stringify(error)).not.toContain(mp3);
    expect(error.details).toEqual({ path: mp3 });
  });
});

describe('wavHeader and pcmDataRange', () => {
  const dir = scratchDir('wav-write');

  it('writes the same 44-byte header ffmpeg writes for 16 kHz mono s16le with +bitexact', async () => {
    const { dataBytes } = await readWavHeader(fixture('jfk.wav'));
    const out = path.join(dir, 'ffmpeg.wav');
    ffmpeg('-i', fixture('jfk.wav'), '-c:a', 'pcm_s16le', '-fflags', '+bitexact', out);
    expect(wavHeader(dataBytes)).toEqual(readFileSync(out).subarray(0, PCM_WAV_HEADER_BYTES));
  });

  it('header + a byte range of a decoded WAV is a valid WAV of that piece, sample for sample', async () => {
    const source = fixture('jfk.wav');
    const header = await readWavHeader(source);
    const range = pcmDataRange(header, 2.5, 4);
    expect(range).toEqual({ offset: header.dataOffset + 2.5 * 32000, bytes: 1.5 * 32000 });
    const piece = path.join(dir, 'piece.wav');
    const bytes = readFileSync(source);
    writeFileSync(piece, Buffer.concat([wavHeader(range.bytes), bytes.subarray(range.offset, range.offset + range.bytes)]));

    // ffmpeg reads it as 1.5 s of 16 kHz mono, and cutting the same samples with ffmpeg gives the same PCM.
    const probed = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=sample_rate,channels,duration', '-of', 'csv=p=0', piece]).toString().trim();
    expect(probed).toBe('16000,1,1.500000');
    const cut = path.join(dir, 'cut.wav');
    ffmpeg('-i', source, '-af', 'atrim=start_sample=40000:end_sample=64000', '-c:a', 'pcm_s16le', '-fflags', '+bitexact', cut);
    expect(readFileSync(piece)).toEqual(readFileSync(cut));
  });

  it('rounds times to whole frames and clamps them to the data', async () => {
    const header = await readWavHeader(fixture('fw_stereo_diarization.wav'));
    const range = pcmDataRange(header, 0.00005, 1e9);
    expect(range.offset).toBe(header.dataOffset + 4);
    expect(range.offset + range.bytes).toBe(header.dataOffset + header.dataBytes);
    expect(pcmDataRange(header, 3, 1)).toMatchObject({ bytes: 0 });
  });

  it('refuses sizes that are not whole frames or do not fit a RIFF header', () => {
    expect(() => wavHeader(3)).toThrow(RangeError);
    expect(() => wavHeader(-2)).toThrow(RangeError);
    expect(() => wavHeader(0xffffffff - 1)).toThrow(RangeError);
    expect(wavHeader(6, { channels: 3, sampleRate: 8000 }).readUInt16LE(32)).toBe(6);
  });
});
