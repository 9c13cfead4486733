import { open } from 'node:fs/promises';
import { AudioError } from './audio.errors.js';

/**
 * WAV (RIFF/WAVE) headers: reading any WAV's format and where its samples are, and writing the
 * header of the 16 kHz mono s16le PCM the gateway hands to engines.
 *
 * Layout (Microsoft RIFF): `RIFF` <u32 size> `WAVE`, then chunks `<4-char id> <u32 size> <body>`,
 * each body padded to an even length. `fmt ` holds the format; `data` the samples; anything else
 * (`LIST` metadata that ffmpeg writes without `-fflags +bitexact`, `fact`, `bext`, `JUNK`) is
 * skipped. All integers are little-endian.
 */

/** What a WAV header says. Sizes and offsets in bytes, rates in Hz. */
export interface WavHeader {
  /** Samples per second per channel, Hz (16 000 for the gateway's engine audio). */
  sampleRate: number;
  channels: number;
  /** Bits per sample of one channel (16 for s16le). */
  bitsPerSample: number;
  /**
   * WAVE format tag: 1 PCM, 3 IEEE float, 6 A-law, 7 µ-law… For WAVE_FORMAT_EXTENSIBLE (0xFFFE)
   * the tag of its sub-format GUID, so an extensible PCM file reads as 1.
   */
  formatTag: number;
  /** Bytes of one sample frame, all channels (the fmt chunk's block align: 2 for 16-bit mono). */
  blockAlign: number;
  /** Byte offset of the first sample in the file (44 for a canonical header). */
  dataOffset: number;
  /**
   * Bytes of samples present: the data chunk's declared size, capped at what the file holds, in
   * whole sample frames. A declared size of 0 or 0xFFFFFFFF (written by encoders that could not
   * seek back to fill it in) means "to the end of the file". Duration in seconds =
   * dataBytes / (sampleRate × blockAlign).
   */
  dataBytes: number;
  /**
   * True when the data chunk declares more bytes than the file holds after it (a recording cut
   * off in transfer); false for the "to the end of the file" sizes 0 and 0xFFFFFFFF.
   */
  dataTruncated: boolean;
}

/**
 * A file whose first bytes the caller has read already: header reads inside `head` cost no
 * system call; reads past it go to the file.
 */
export interface FileWithHead {
  path: string;
  /** The file's first bytes (all of them when the file is that short). */
  head: Buffer;
  /** The file's size in bytes. */
  size: number;
}

/** Size of the canonical PCM header wavHeader writes: RIFF (12) + fmt (8 + 16) + data chunk header (8). */
export const PCM_WAV_HEADER_BYTES = 44;

const UNKNOWN_SIZE = 0xffffffff;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** Chunk headers a reader walks through before giving up (a WAV has a handful). */
const MAX_CHUNKS = 1024;

interface ByteSource {
  /** Total bytes. */
  size: number;
  /** Up to `length` bytes from `offset` (fewer at the end). */
  read(offset: number, length: number): Promise<Buffer>;
}

function malformed(why: string, path: string | undefined): AudioError {
  return new AudioError('AUDIO_UNREADABLE', `malformed WAV header: ${why}`, path ? { details: { path } } : {});
}

/**
 * Reads the header of a WAV file or buffer: the format, and where the samples are. From a file
 * it reads only the chunk headers (a few dozen bytes), never the samples, so it costs the same
 * for a 1 GB recording as for a short one.
 *
 * Walks the RIFF chunks rather than assuming the 44-byte canonical header, so `LIST` and other
 * chunks before `data` are skipped. RF64 files (over 4 GiB) are read through their `ds64` chunk.
 *
 * @param source path of a WAV file, or its bytes (from a buffer, `dataBytes` is capped at the
 *   buffer's length).
 * @throws AudioError AUDIO_UNREADABLE when it is not RIFF/WAVE, the fmt chunk is missing,
 *   truncated or comes after data, or there is no data chunk; the message never names the path
 *   (it is in `details`). fs errors (ENOENT…) as they are.
 */
export async function readWavHeader(source: string | Uint8Array | FileWithHead): Promise<WavHeader> {
  if (source instanceof Uint8Array) {
    const bytes = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    return walk({ size: bytes.length, read: (offset, length) => Promise.resolve(bytes.subarray(offset, offset + length)) }, undefined);
  }
  if (typeof source !== 'string') {
    const { path, head, size } = source;
    const read = async (offset: number, length: number): Promise<Buffer> => {
      if (offset + length <= head.length || head.length >= size) return head.subarray(offset, offset + length);
      const handle = await open(path, 'r');
      try {
        const buffer = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        return buffer.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    };
    return walk({ size, read }, path);
  }
  const handle = await open(source, 'r');
  try {
    const { size } = await handle.stat();
    return await walk(
      {
        size,
        read: async (offset, length) => {
          const buffer = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
          return buffer.subarray(0, bytesRead);
        },
      },
      source,
    );
  } finally {
    await handle.close();
  }
}

async function walk(src: ByteSource, path: string | undefined): Promise<WavHeader> {
  const riff = await src.read(0, 12);
  const magic = riff.toString('ascii', 0, 4);
  if (riff.length < 12 || (magic !== 'RIFF' && magic !== 'RF64') || riff.toString('ascii', 8, 12) !== 'WAVE') {
    throw malformed('not a RIFF/WAVE file', path);
  }
  let format: Omit<WavHeader, 'dataOffset' | 'dataBytes' | 'dataTruncated'> | undefined;
  let ds64DataBytes: number | undefined;
  let offset = 12;
  for (let i = 0; i < MAX_CHUNKS && offset + 8 <= src.size; i++) {
    const head = await src.read(offset, 8);
    if (head.length < 8) break;
    const id = head.toString('ascii', 0, 4);
    const size = head.readUInt32LE(4);
    const body = offset + 8;
    if (id === 'ds64') {
      // RF64: riffSize (u64), dataSize (u64), sampleCount (u64), …
      const ds64 = await src.read(body, 16);
      if (ds64.length < 16) throw malformed('truncated ds64 chunk', path);
      ds64DataBytes = Number(ds64.readBigUInt64LE(8));
    } else if (id === 'fmt ') {
      const fmt = await src.read(body, Math.min(size, 40));
      if (size < 16 || fmt.length < 16) throw malformed('truncated fmt chunk', path);
      let formatTag = fmt.readUInt16LE(0);
      // WAVE_FORMAT_EXTENSIBLE carries the real format tag in the first two bytes of its sub-format GUID.
      if (formatTag === WAVE_FORMAT_EXTENSIBLE && fmt.length >= 26) formatTag = fmt.readUInt16LE(24);
      format = {
        formatTag,
        channels: fmt.readUInt16LE(2),
        sampleRate: fmt.readUInt32LE(4),
        blockAlign: fmt.readUInt16LE(12),
        bitsPerSample: fmt.readUInt16LE(14),
      };
      if (format.channels === 0 || format.sampleRate === 0) throw malformed('the fmt chunk declares no channels or a sample rate of 0', path);
      // Some writers leave block align 0; it follows from the other fields for every PCM layout.
      if (format.blockAlign === 0) format.blockAlign = format.channels * Math.ceil(format.bitsPerSample / 8);
    } else if (id === 'data') {
      if (!format) throw malformed('data chunk before fmt chunk', path);
      const available = src.size - body;
      const declared = size === UNKNOWN_SIZE && ds64DataBytes !== undefined ? ds64DataBytes : size;
      const bytes = declared === 0 || declared === UNKNOWN_SIZE ? available : Math.min(declared, available);
      // A partial trailing frame (an odd byte of 16-bit audio) is not a sample.
      const whole = format.blockAlign > 0 ? bytes - (bytes % format.blockAlign) : bytes;
      const dataTruncated = declared !== 0 && declared !== UNKNOWN_SIZE && declared > available;
      return { ...format, dataOffset: body, dataBytes: Math.max(0, whole), dataTruncated };
    }
    offset = body + size + (size % 2);
  }
  throw malformed(format ? 'no data chunk' : 'no fmt chunk', path);
}

/**
 * WAVE format tags that ffmpeg's WAV demuxer maps to a decoder (libavformat riff.c,
 * `ff_codec_wav_tags`: the audio formats seen in practice). A tag outside this table is decoded by
 * nothing: ffprobe names the codec `unknown` and only the worker's decode would fail.
 */
const DECODABLE_FORMAT_TAGS: ReadonlyMap<number, string> = new Map([
  [0x0001, 'PCM'], [0x0002, 'MS ADPCM'], [0x0003, 'IEEE float'], [0x0006, 'A-law'], [0x0007, 'µ-law'],
  [0x0010, 'OKI ADPCM'], [0x0011, 'IMA ADPCM'], [0x0017, 'OKI ADPCM'], [0x0020, 'Yamaha ADPCM'],
  [0x0022, 'TrueSpeech'], [0x0031, 'GSM 6.10'], [0x0032, 'MSN audio'], [0x0038, 'AMR-NB'], [0x0040, 'G.721 ADPCM'], [0x0042, 'G.723.1'],
  [0x0045, 'G.726 ADPCM'], [0x0050, 'MPEG audio'], [0x0055, 'MPEG layer 3'], [0x0061, 'Duck DK4 ADPCM'],
  [0x0062, 'Duck DK3 ADPCM'], [0x0064, 'G.726 ADPCM'], [0x0069, 'IMA ADPCM'], [0x0075, 'Voxware RT29'], [0x0083, 'G.729'],
  [0x0092, 'AC-3'], [0x00ff, 'AAC'], [0x0130, 'Sipro'], [0x0160, 'WMA v1'], [0x0161, 'WMA v2'],
  [0x0162, 'WMA Pro'], [0x0163, 'WMA Lossless'], [0x0200, 'Creative ADPCM'], [0x0270, 'ATRAC3'],
  [0x0401, 'Intel Music Coder'], [0x1500, 'G.729'], [0x1600, 'AAC'], [0x1602, 'AAC LATM'], [0x2000, 'AC-3'],
  [0x2001, 'DTS'], [0x4143, 'AAC'], [0x566f, 'Vorbis'], [0x674f, 'Vorbis'], [0x6750, 'Vorbis'],
  [0x6751, 'Vorbis'], [0x706d, 'AAC'], [0xa100, 'G.723.1'], [0xa106, 'AAC'], [0xa109, 'Speex'], [0xf1ac, 'FLAC'],
]);

/** Uncompressed tags: their samples are read as they are, so the bits per sample must be a PCM width. */
const UNCOMPRESSED_BITS: ReadonlyMap<number, readonly number[]> = new Map([
  [0x0001, [8, 16, 24, 32, 64]],
  [0x0003, [32, 64]],
  [0x0006, [8]],
  [0x0007, [8]],
]);

/** Sample rates a WAV may declare, Hz: below 1 kHz nothing is speech; above 768 kHz no converter is built for it. */
export const WAV_SAMPLE_RATE_RANGE_HZ = { min: 1_000, max: 768_000 } as const;

/**
 * Checks that a WAV header describes audio a decoder can turn into samples: a format tag ffmpeg
 * decodes, a PCM width of bits per sample for uncompressed formats, a sample rate within
 * {@link WAV_SAMPLE_RATE_RANGE_HZ}, and at least one whole sample frame after the header.
 *
 * Reads only the header's fields: cheap, for submit time, so such files get a 422 at once
 * instead of a 202 and a failure in the worker.
 *
 * @throws AudioError AUDIO_UNSUPPORTED_FORMAT (422) naming the field, the value and what is
 *   accepted; AUDIO_NO_SAMPLES (422) for a header without samples.
 */
export function assertDecodableWav(header: WavHeader): void {
  const unsupported = (message: string, fields: Record<string, unknown>) =>
    new AudioError('AUDIO_UNSUPPORTED_FORMAT', message, { publicFields: fields });
  const tag = `0x${header.formatTag.toString(16).padStart(4, '0')}`;
  if (!DECODABLE_FORMAT_TAGS.has(header.formatTag)) {
    throw unsupported(`the WAV header declares format tag ${tag}, which no decoder handles; accepted: PCM (0x0001), IEEE float (0x0003), A-law, µ-law, ADPCM and the compressed formats ffmpeg reads from WAV`, { format_tag: tag });
  }
  const widths = UNCOMPRESSED_BITS.get(header.formatTag);
  if (widths && !widths.includes(header.bitsPerSample)) {
    const name = DECODABLE_FORMAT_TAGS.get(header.formatTag)!;
    throw unsupported(`the WAV header declares ${header.bitsPerSample} bits per sample for ${name}; accepted: ${widths.join(', ')}`, { bits_per_sample: header.bitsPerSample });
  }
  const { min, max } = WAV_SAMPLE_RATE_RANGE_HZ;
  if (header.sampleRate < min || header.sampleRate > max) {
    throw unsupported(`the WAV header declares a sample rate of ${header.sampleRate} Hz; accepted: ${min}–${max} Hz`, { sample_rate: header.sampleRate });
  }
  if (header.dataBytes === 0) {
    throw new AudioError('AUDIO_NO_SAMPLES', 'the WAV file holds no audio samples (its data chunk is empty: a header only); send a recording with at least one sample', {
      publicFields: { data_bytes: 0 },
    });
  }
}

/**
 * {@link assertDecodableWav} for a file that may or may not be a WAV: a file that is not
 * RIFF/WAVE, or whose header cannot be walked, passes (the container probe then judges it, with
 * its own message); a readable WAV header must pass assertDecodableWav.
 *
 * @param source the file's path, or the file with its first bytes already read.
 * @returns the WAV header that passed, or null when the file is not a WAV this can walk.
 * @throws AudioError AUDIO_UNSUPPORTED_FORMAT / AUDIO_NO_SAMPLES; fs errors as they are.
 */
export async function assertDecodableIfWav(source: string | FileWithHead): Promise<WavHeader | null> {
  let header: WavHeader;
  try {
    header = await readWavHeader(source);
  } catch (err) {
    if (err instanceof AudioError) return null;
    throw err;
  }
  assertDecodableWav(header);
  return header;
}

/**
 * The canonical 44-byte header of a 16-bit PCM (s16le) WAV holding `dataBytes` bytes of samples,
 * as ffmpeg writes it with `-c:a pcm_s16le -fflags +bitexact`: `RIFF`, `fmt ` (16 bytes, format
 * tag 1), `data`. Followed by a byte range of another such file's samples (see pcmDataRange), it
 * makes a valid WAV of that piece without decoding anything again.
 *
 * @param dataBytes bytes of samples that follow the header; a whole number of frames.
 * @param format sample rate (Hz, default 16 000) and channels (default 1).
 * @throws RangeError when dataBytes is negative, not a whole number of frames, or does not fit a
 *   RIFF size field (dataBytes + 36 must stay below 0xFFFFFFFF, the "unknown size" marker).
 */
export function wavHeader(dataBytes: number, format: { sampleRate?: number; channels?: number } = {}): Buffer {
  const sampleRate = format.sampleRate ?? 16_000;
  const channels = format.channels ?? 1;
  const blockAlign = channels * 2;
  if (!Number.isInteger(dataBytes) || dataBytes < 0 || dataBytes % blockAlign !== 0 || dataBytes + 36 >= UNKNOWN_SIZE) {
    throw new RangeError(`dataBytes must be a whole number of ${blockAlign}-byte frames below 4 GiB, got ${dataBytes}`);
  }
  const header = Buffer.alloc(PCM_WAV_HEADER_BYTES);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(channels, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * blockAlign, 28);
  header.writeUInt16LE(blockAlign, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(dataBytes, 40);
  return header;
}

/**
 * Where the samples between two times lie in a PCM WAV: the file offset and length of that
 * piece, on sample-frame boundaries (times rounded to the nearest frame), clamped to the data.
 *
 * @param startSec / endSec seconds from the start of the audio; endSec ≥ startSec.
 * @returns `offset` (bytes from the start of the file) and `bytes` (a whole number of frames, ≥ 0).
 */
export function pcmDataRange(header: WavHeader, startSec: number, endSec: number): { offset: number; bytes: number } {
  const frames = header.dataBytes / header.blockAlign;
  const first = Math.min(frames, Math.max(0, Math.round(startSec * header.sampleRate)));
  const last = Math.min(frames, Math.max(first, Math.round(endSec * header.sampleRate)));
  return { offset: header.dataOffset + first * header.blockAlign, bytes: (last - first) * header.blockAlign };
}
