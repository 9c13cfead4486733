import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { pcmDataRange, wavHeader, type WavHeader } from '../../audio/wav.js';
import type { SpeechChunk } from './speech-chunks.js';

/** Bytes of zeros written per call when laying down a gap of silence. */
const SILENCE_BLOCK = Buffer.alloc(64 * 1024);

/**
 * Writes one speech chunk as a 16 kHz mono s16le WAV cut from the decoded recording, in-process
 * and without decoding again: a 44-byte header, then each span's samples copied as a byte range
 * of the source, with `chunk.gap_sec` of digital silence between consecutive spans (so engines
 * still hear a sentence boundary where non-speech was left out). Streams: nothing is held in
 * memory beyond one read block.
 *
 * @param source the decoded recording and its header (readWavHeader), 16 kHz mono s16le.
 * @returns bytes of audio data written and its duration in seconds.
 */
export async function writeSpeechChunkWav(source: { path: string; header: WavHeader }, chunk: SpeechChunk, outPath: string): Promise<{ dataBytes: number; durationSec: number }> {
  const { header } = source;
  const frameBytes = header.blockAlign;
  const gapBytes = Math.round(chunk.gap_sec * header.sampleRate) * frameBytes;
  const ranges = chunk.spans.map((span) => pcmDataRange(header, span.start, span.end));
  const dataBytes = ranges.reduce((sum, r) => sum + r.bytes, 0) + gapBytes * Math.max(0, ranges.length - 1);
  const out = createWriteStream(outPath);
  const write = async (buffer: Buffer) => {
    if (!out.write(buffer)) await once(out, 'drain');
  };
  try {
    await write(wavHeader(dataBytes, { sampleRate: header.sampleRate, channels: header.channels }));
    for (let i = 0; i < ranges.length; i++) {
      if (i > 0) {
        for (let left = gapBytes; left > 0; left -= SILENCE_BLOCK.length) await write(SILENCE_BLOCK.subarray(0, Math.min(left, SILENCE_BLOCK.length)));
      }
      const { offset, bytes } = ranges[i];
      if (bytes === 0) continue;
      for await (const block of createReadStream(source.path, { start: offset, end: offset + bytes - 1, highWaterMark: SILENCE_BLOCK.length })) await write(block as Buffer);
    }
    out.end();
    await once(out, 'finish');
  } catch (err) {
    out.destroy();
    throw err;
  }
  return { dataBytes, durationSec: dataBytes / frameBytes / header.sampleRate };
}
