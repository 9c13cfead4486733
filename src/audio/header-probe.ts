import { open } from 'node:fs/promises';
import { parseFile, parseFromTokenizer, type IFormat } from 'music-metadata';
import { fromBuffer } from 'strtok3';
import { AudioError } from './audio.errors.js';
import type { WavHeader } from './wav.js';

/**
 * What a container header says, read in-process (music-metadata) without decoding: the fast
 * path of a submission. Same field meanings as the ffprobe-based AudioProbe (ffprobe's names
 * for container and codec), so checks written against one apply to the other.
 */
export interface HeaderProbe {
  /** ffprobe's name of the container: `wav`, `mp3`, `flac`, `ogg`. */
  format_name: string;
  /** Seconds the header claims (the decoded length may turn out shorter: see the worker's intake). */
  duration_sec: number;
  /** ffprobe's codec name: `pcm_s16le`, `mp3`, `flac`, `opus`, `vorbis`… */
  codec: string;
  /** Hz (for Opus the 48 kHz decode rate, as ffprobe reports it). */
  sample_rate: number;
  channels: number;
}

/**
 * Containers and codecs the header path answers for, mapped to ffprobe's names. Everything else
 * (MP4/M4A, whose sample entry may claim 2 channels for mono AAC; Matroska; video; WAV formats
 * other than PCM and float; unknown files) goes to ffprobe, so nothing that worked before is refused.
 */
function ffprobeNames(format: IFormat): { format_name: string; codec: string } | null {
  const { container, codec, bitsPerSample } = format;
  switch (container) {
    case 'WAVE':
      if (codec === 'PCM' && bitsPerSample && [8, 16, 24, 32].includes(bitsPerSample)) {
        return { format_name: 'wav', codec: bitsPerSample === 8 ? 'pcm_u8' : `pcm_s${bitsPerSample}le` };
      }
      if (codec === 'IEEE_FLOAT' && (bitsPerSample === 32 || bitsPerSample === 64)) return { format_name: 'wav', codec: `pcm_f${bitsPerSample}le` };
      return null;
    case 'MPEG':
      return codec && /^MPEG (1|2|2\.5) Layer 3$/.test(codec) ? { format_name: 'mp3', codec: 'mp3' } : null;
    case 'FLAC':
      return codec === 'FLAC' ? { format_name: 'flac', codec: 'flac' } : null;
    case 'Ogg':
      if (codec === 'Opus') return { format_name: 'ogg', codec: 'opus' };
      if (codec === 'Vorbis I') return { format_name: 'ogg', codec: 'vorbis' };
      return null;
    default:
      return null;
  }
}

/**
 * Bytes read from the start of a file for the header: room for the WAV chunk headers, an MP3's
 * ID3v2 tag (without large cover art) and its first frames, FLAC's metadata blocks.
 */
export const HEAD_BYTES = 32 * 1024;

/**
 * The first HEAD_BYTES of a file (all of it when shorter): one read per submission, shared by
 * the WAV checks (wav.ts) and readHeader.
 */
export function readHead(filePath: string): Promise<Buffer> {
  return readAt(filePath, 0, HEAD_BYTES);
}

/**
 * A PCM or float WAV described from the header wav.ts walked (the same fields music-metadata
 * reads: format tag, bits per sample, rate, channels, data chunk size), in ffprobe's names;
 * null for other WAV formats (ffprobe decides).
 */
function describeWav(wav: WavHeader, sizeBytes: number): HeaderProbe | null {
  const { formatTag, bitsPerSample, sampleRate, channels, blockAlign, dataBytes } = wav;
  let codec: string;
  if (formatTag === 1 && [8, 16, 24, 32].includes(bitsPerSample)) codec = bitsPerSample === 8 ? 'pcm_u8' : `pcm_s${bitsPerSample}le`;
  else if (formatTag === 3 && (bitsPerSample === 32 || bitsPerSample === 64)) codec = `pcm_f${bitsPerSample}le`;
  else return null;
  if (!sampleRate || !channels || !blockAlign || dataBytes <= 0 || sizeBytes <= 0) return null;
  return { format_name: 'wav', codec, duration_sec: dataBytes / (sampleRate * blockAlign), sample_rate: sampleRate, channels };
}

type Parsed = { format: IFormat; warnings: string[] };

/** music-metadata on the file's first bytes, told the file's real size (it derives durations and checks chunk sizes from it). */
async function parseHead(head: Buffer, sizeBytes: number): Promise<Parsed> {
  const tokenizer = fromBuffer(head);
  // Reads past the buffer end fail as at the end of a file; sizes and durations use the real
  // length. Not random access: music-metadata then skips its scan for tags at the file's end.
  Object.assign(tokenizer.fileInfo, { size: sizeBytes });
  tokenizer.supportsRandomAccess = () => false;
  const meta = await parseFromTokenizer(tokenizer, PARSE_OPTIONS);
  return { format: meta.format, warnings: meta.quality.warnings.map((w) => w.message) };
}

async function parseWhole(filePath: string): Promise<Parsed> {
  const meta = await parseFile(filePath, PARSE_OPTIONS);
  return { format: meta.format, warnings: meta.quality.warnings.map((w) => w.message) };
}

const PARSE_OPTIONS = { duration: false, skipCovers: true, skipPostHeaders: true } as const;

/** The header's facts in ffprobe's terms, or null when something the probe needs is missing. */
function describe({ format }: Parsed): HeaderProbe | null {
  const names = ffprobeNames(format);
  const { sampleRate, numberOfChannels, duration } = format;
  if (!names || format.hasVideo || !sampleRate || !numberOfChannels || !duration || !Number.isFinite(duration) || duration <= 0) return null;
  // Opus always decodes at 48 kHz (what ffprobe reports); its header holds the encoder's input rate.
  return { ...names, duration_sec: duration, sample_rate: names.codec === 'opus' ? 48000 : sampleRate, channels: numberOfChannels };
}

/**
 * Reads the container header of `filePath` in-process (no child process, no decoding): one read
 * of the first HEAD_BYTES parsed by music-metadata; the whole file through music-metadata only
 * where the start does not suffice (Ogg keeps the duration in its last page; a large ID3 tag).
 *
 * @param sizeBytes the file's size in bytes (already stat'ed by the caller).
 * @param known what the caller has read already: the file's first HEAD_BYTES (readHead), and its
 *   WAV header when wav.ts walked one (a PCM/float WAV is then described from it, without
 *   music-metadata).
 * @returns the header's facts, or null when the header cannot tell (unknown or unsupported
 *   container, a video, missing duration/rate/channels, a damaged header): the caller then asks ffprobe.
 * @throws AudioError AUDIO_TRUNCATED when the header itself shows that the file was cut off: a
 *   RIFF/WAVE size or `data` chunk larger than the file, or an MP3 Xing/Info header declaring
 *   more bytes of audio than arrived.
 */
export async function readHeader(filePath: string, sizeBytes: number, known: { head?: Buffer; wav?: WavHeader | null } = {}): Promise<HeaderProbe | null> {
  const head = known.head ?? (await readHead(filePath));
  if (known.wav) {
    // Already walked (wav.ts, for the 422 checks): no second parse of the same header.
    const probe = describeWav(known.wav, sizeBytes);
    if (probe) {
      riffComplete(filePath, head, sizeBytes);
      if (known.wav.dataTruncated) throw wavDataTruncated(filePath, sizeBytes, probe.duration_sec);
      return probe;
    }
  }
  let parsed: Parsed;
  try {
    parsed = await parseHead(head, sizeBytes);
    const partial = head.length < sizeBytes && (parsed.format.container === 'Ogg' || parsed.warnings.some((w) => /end-of-stream/i.test(w)));
    if (head.length < sizeBytes && (partial || !describe(parsed))) parsed = await parseWhole(filePath);
  } catch {
    // music-metadata throws on files it does not recognise or cannot parse: ffprobe decides.
    return null;
  }
  const probe = describe(parsed);
  if (!probe) return null;
  if (probe.format_name === 'wav') assertWavComplete(filePath, head, sizeBytes, parsed.warnings, probe.duration_sec);
  if (probe.format_name === 'mp3') assertMp3Complete(filePath, head, sizeBytes, probe.duration_sec);
  return probe;
}

/**
 * A RIFF/WAVE header states the file's size; ffmpeg silently decodes whatever is there, so a
 * cut-off upload would otherwise be transcribed as if it were the whole recording. Streamed WAVs
 * write 0 or 0xFFFFFFFF as a size that was unknown: those are accepted. Files that are not
 * RIFF/WAVE pass.
 * @param size bytes of the file.
 * @throws AudioError AUDIO_TRUNCATED
 */
export async function assertRiffComplete(filePath: string, size: number): Promise<void> {
  riffComplete(filePath, await readAt(filePath, 0, 12), size);
}

/** assertRiffComplete on the file's first bytes. */
function riffComplete(filePath: string, header: Buffer, size: number): void {
  if (header.length < 12 || header.toString('ascii', 0, 4) !== 'RIFF' || header.toString('ascii', 8, 12) !== 'WAVE') return;
  const declared = header.readUInt32LE(4) + 8;
  if (declared > 8 && declared !== 0xffffffff + 8 && size < declared) {
    throw new AudioError('AUDIO_TRUNCATED', `the WAV file is truncated: its header declares ${declared} bytes but ${size} arrived`, {
      publicFields: { declared_bytes: declared, size_bytes: size },
      details: { path: filePath },
    });
  }
}

/** The RIFF size, and the `data` chunk's size (music-metadata caps it at the file's end and warns). */
function assertWavComplete(filePath: string, head: Buffer, size: number, warnings: string[], durationSec: number): void {
  riffComplete(filePath, head, size);
  if (warnings.some((w) => w.includes('data chunk length exceeding file length'))) throw wavDataTruncated(filePath, size, durationSec);
}

function wavDataTruncated(filePath: string, size: number, durationSec: number): AudioError {
  return new AudioError('AUDIO_TRUNCATED', `the WAV file is truncated: its data chunk declares more samples than the file holds (${durationSec.toFixed(1)} s arrived)`, {
    publicFields: { size_bytes: size },
    details: { path: filePath },
  });
}

/** Bytes of an ID3v2 tag at the start of a file (10-byte header + syncsafe size + optional footer), else 0. */
function id3v2Size(head: Buffer): number {
  if (head.length < 10 || head.toString('latin1', 0, 3) !== 'ID3') return 0;
  const size = ((head[6] & 0x7f) << 21) | ((head[7] & 0x7f) << 14) | ((head[8] & 0x7f) << 7) | (head[9] & 0x7f);
  return 10 + size + (head[5] & 0x10 ? 10 : 0);
}

/**
 * The Xing (VBR) or Info (CBR) tag in an MP3's first frame records the frame count and, with
 * flag 0x2, the stream's length in bytes (http://gabriel.mp3-tech.org/mp3infotag.html).
 * music-metadata reads the frame count (the claimed duration) but not the byte count; a file
 * shorter than that count was cut off. Tolerance: one maximal frame (1441 bytes) plus an ID3v1 tag.
 */
function assertMp3Complete(filePath: string, head: Buffer, size: number, claimedSec: number): void {
  const tagBytes = id3v2Size(head);
  const frame = head.subarray(tagBytes, tagBytes + 256);
  // The tag sits after the 4-byte frame header and the side information (9–32 bytes).
  const at = Math.max(frame.indexOf('Xing', 4, 'latin1'), frame.indexOf('Info', 4, 'latin1'));
  if (at < 0 || at > 48 || frame.length < at + 16) return;
  const flags = frame.readUInt32BE(at + 4);
  if (!(flags & 0x2)) return;
  const declared = frame.readUInt32BE(at + 4 + 4 + (flags & 0x1 ? 4 : 0));
  const arrived = size - tagBytes;
  if (declared > 0 && arrived + 1441 + 128 < declared) {
    const arrivedSec = (claimedSec * arrived) / declared;
    throw new AudioError(
      'AUDIO_TRUNCATED',
      `the MP3 file is truncated: its header declares ${declared} bytes of audio (${claimedSec.toFixed(1)} s) but ${arrived} arrived (about ${arrivedSec.toFixed(1)} s)`,
      { publicFields: { declared_bytes: declared, size_bytes: size, claimed_duration_sec: round3(claimedSec) }, details: { path: filePath } },
    );
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Up to `length` bytes of a file from `offset` (fewer at its end). */
async function readAt(filePath: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(filePath, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
