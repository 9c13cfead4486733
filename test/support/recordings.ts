import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fixture } from './env.js';
import { references } from './wer.js';

/** Fixture clips pocketsphinx handles (its own test set and read speech), with their reference ids. */
const CLIPS: [string, string][] = [
  ['libri_0870.wav', 'libri_0870'], ['goforward.wav', 'goforward'], ['libri_0880.wav', 'libri_0880'],
  ['libri_0890.wav', 'libri_0890'], ['jfk.wav', 'jfk'], ['libri_0920.wav', 'libri_0920'], ['libri_0930.wav', 'libri_0930'],
];

/**
 * Builds a long 16 kHz mono recording by joining fixture clips with `pauseSec` of silence between
 * them (ffmpeg concat demuxer), until it lasts at least `minSeconds`.
 * @returns the WAV path, its reference transcript (the clips' references in order) and its duration.
 */
export function buildLongRecording(dir: string, minSeconds: number, pauseSec = 0.8): { path: string; reference: string; duration: number } {
  const refs = references();
  const silence = path.join(dir, 'pause.wav');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', String(pauseSec), '-c:a', 'pcm_s16le', silence]);
  const lines: string[] = [];
  const text: string[] = [];
  let seconds = 0;
  const lengths: Record<string, number> = { 'libri_0870.wav': 7.1, 'goforward.wav': 2.79, 'libri_0880.wav': 2.99, 'libri_0890.wav': 5.3, 'jfk.wav': 11, 'libri_0920.wav': 6.05, 'libri_0930.wav': 3.29 };
  for (let i = 0; seconds < minSeconds; i++) {
    const [file, id] = CLIPS[i % CLIPS.length];
    lines.push(`file '${fixture(file)}'`, `file '${silence}'`);
    text.push(refs.get(id)!);
    seconds += lengths[file] + pauseSec;
  }
  const list = path.join(dir, 'list.txt');
  writeFileSync(list, lines.join('\n') + '\n');
  const out = path.join(dir, `long-${Math.round(minSeconds)}s.wav`);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list, '-c:a', 'pcm_s16le', '-ar', '16000', '-ac', '1', '-fflags', '+bitexact', out]);
  const duration = Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', out]).toString());
  return { path: out, reference: text.join(' '), duration };
}
