import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fixture } from './env.js';

/** Read-speech fixture clips (16 kHz mono WAV) that pocketsphinx handles; joined in this order. */
const CLIPS = ['libri_0870.wav', 'goforward.wav', 'libri_0880.wav', 'libri_0890.wav', 'jfk.wav', 'libri_0920.wav', 'libri_0930.wav'];

/** Duration in seconds as ffprobe reads it from the container. */
export function probeDuration(file: string): number {
  return Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]).toString().trim());
}

/**
 * Builds a long 16 kHz mono WAV by joining the fixture clips with `pauseSec` of digital silence
 * between them (ffmpeg concat demuxer) until it lasts at least `minSeconds` — speech with real
 * pauses, so the pipeline cuts chunks inside pauses as it would on a real recording.
 * (The same construction as the tests' recording builder, which the benchmark build cannot import.)
 *
 * @param options.exactSeconds cut the result to exactly this many seconds.
 * @returns the WAV path and its duration in seconds.
 */
export function buildRecording(dir: string, minSeconds: number, options: { pauseSec?: number; exactSeconds?: number; name?: string } = {}): { path: string; duration: number } {
  const pauseSec = options.pauseSec ?? 0.8;
  const silence = path.join(dir, 'pause.wav');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', String(pauseSec), '-c:a', 'pcm_s16le', silence]);
  const lengths = new Map(CLIPS.map((c) => [c, probeDuration(fixture(c))]));
  const lines: string[] = [];
  let seconds = 0;
  for (let i = 0; seconds < minSeconds; i++) {
    const clip = CLIPS[i % CLIPS.length];
    lines.push(`file '${fixture(clip)}'`, `file '${silence}'`);
    seconds += lengths.get(clip)! + pauseSec;
  }
  const list = path.join(dir, 'list.txt');
  writeFileSync(list, lines.join('\n') + '\n');
  const out = path.join(dir, options.name ?? `recording-${Math.round(minSeconds)}s.wav`);
  execFileSync('ffmpeg', [
    '-v', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list,
    ...(options.exactSeconds ? ['-t', String(options.exactSeconds)] : []),
    '-c:a', 'pcm_s16le', '-ar', '16000', '-ac', '1', '-fflags', '+bitexact', out,
  ]);
  return { path: out, duration: probeDuration(out) };
}

/**
 * Encodes a WAV as a typical upload: MP3, 44.1 kHz stereo, 128 kbit/s — so that decoding it to
 * 16 kHz mono is real work (a 16 kHz mono WAV would only be copied).
 */
export function encodeMp3(wav: string, out: string): string {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', wav, '-ac', '2', '-ar', '44100', '-c:a', 'libmp3lame', '-b:a', '128k', out]);
  return out;
}
