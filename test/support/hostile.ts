import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { TestGateway } from './gateway.js';

/**
 * A canonical 44-byte-header WAV with chosen header fields and `samples` frames of silence.
 * Fields default to 16 kHz mono 16-bit PCM; `bits`/`rate` are written as given (0 and 1 included),
 * block align and byte rate follow from them.
 */
export function pcmWav(opts: { formatTag?: number; channels?: number; rate?: number; bits?: number; samples?: number }): Buffer {
  const channels = opts.channels ?? 1;
  const rate = opts.rate ?? 16_000;
  const bits = opts.bits ?? 16;
  const frame = channels * Math.max(1, Math.ceil(bits / 8));
  const data = Buffer.alloc((opts.samples ?? 0) * frame);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(opts.formatTag ?? 1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE((rate * frame) >>> 0, 28);
  h.writeUInt16LE(frame, 32);
  h.writeUInt16LE(bits, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

/** Files and directories under `dir` (relative paths), and the directories among them that are empty. */
function tree(dir: string): { files: string[]; emptyDirs: string[] } {
  const files: string[] = [];
  const emptyDirs: string[] = [];
  const walk = (d: string) => {
    const entries = readdirSync(d, { withFileTypes: true });
    if (entries.length === 0 && d !== dir) emptyDirs.push(path.relative(dir, d));
    for (const e of entries) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else files.push(path.relative(dir, full));
    }
  };
  walk(dir);
  return { files: files.sort(), emptyDirs: emptyDirs.sort() };
}

/**
 * What a gateway holds: rows in both tables, stored objects (local driver), empty directories
 * left in storage, and temp files (uploads in flight, per-job scratch directories). Compared
 * before and after a rejected request, they must be equal.
 */
export async function leftovers(gw: TestGateway): Promise<{ transcripts: number; jobs: number; stored: number; storedKeys: string[]; emptyDirs: string[]; uploads: number; scratch: number }> {
  const [t] = await gw.db.query('SELECT count(*)::int AS n FROM transcripts');
  const [j] = await gw.db.query('SELECT count(*)::int AS n FROM transcript_jobs');
  const storage = tree(gw.config.DATA_DIR);
  return {
    transcripts: t.n as number,
    jobs: j.n as number,
    stored: storage.files.length,
    storedKeys: storage.files,
    emptyDirs: storage.emptyDirs,
    uploads: readdirSync(path.join(gw.config.TEMP_DIR, 'uploads')).length,
    scratch: readdirSync(path.join(gw.config.TEMP_DIR, 'jobs')).length,
  };
}
