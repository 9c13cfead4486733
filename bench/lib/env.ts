import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the benchmarks find things. They run compiled (`node dist/bench/<name>.js`) from the
 * project root, which scripts/bench.sh makes the working directory.
 */

/** The compiled tree holding this file: `dist/` (this file is `dist/bench/lib/env.js`). */
export const DIST_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The gateway's entry point inside the compiled tree. */
export const GATEWAY_MAIN = path.join(DIST_DIR, 'src', 'main.js');

/** The project root (the working directory; scripts/bench.sh cds there). */
export const ROOT = process.cwd();

/** JSON results go here, one file per benchmark (`BENCH_RESULTS_DIR` overrides). */
export const RESULTS_DIR = process.env.BENCH_RESULTS_DIR ?? path.join(ROOT, 'bench', 'results');

/** The fixtures directory: SHARED_DIR, or ../shared beside the project root (as the tests). */
export const SHARED_DIR = process.env.SHARED_DIR ?? path.resolve(ROOT, '..', 'shared');
export const fixture = (name: string) => path.join(SHARED_DIR, 'fixtures', 'audio', name);

/** The bench profile's own Postgres and Redis (scripts/bench.sh: ports 54359 and 63829). */
export const BENCH_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://gateway:gateway@127.0.0.1:54359/gateway';
export const BENCH_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:63829';

/** A fresh scratch directory under the OS temp dir (recordings, storage, uploads of one run). */
export const scratchDir = (prefix: string) => mkdtempSync(path.join(os.tmpdir(), `gw-bench-${prefix}-`));

/** A number from the environment, or `fallback` when unset or not a number. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
  return Number.isFinite(value) ? value : fallback;
}

/** Runs a benchmark's main function and exits: 0 when it finished, 1 (with the error printed) when it threw. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
