import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS_DIR } from './env.js';
import type { MachineInfo } from './machine.js';

/** One line of a benchmark's results table. */
export interface HeadlineRow {
  metric: string;
  value: number | string;
  unit: string;
  note?: string;
}

/** What each benchmark writes to bench/results/<name>.json. */
export interface BenchResult {
  benchmark: string;
  /** ISO times. */
  started_at: string;
  finished_at: string;
  machine: MachineInfo;
  /** How it was measured, in words. */
  method: string;
  /** The settings it ran with. */
  config: Record<string, unknown>;
  /** Every raw measurement (times in seconds, sizes in bytes unless the key says otherwise). */
  measurements: Record<string, unknown>;
  /** The rows of the results table (bench/README.md). */
  headline: HeadlineRow[];
}

/** Writes the result file and prints its table. @returns the file's path. */
export function writeResult(result: BenchResult): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${result.benchmark}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(formatTable(result.benchmark, result.headline, result.machine));
  console.log(`  → ${path.relative(process.cwd(), file)}`);
  return file;
}

/** A plain-text table of headline rows, with the load average the run started at. */
export function formatTable(name: string, rows: HeadlineRow[], machine: MachineInfo): string {
  const cells = rows.map((r) => [r.metric, typeof r.value === 'number' ? String(r.value) : r.value, r.unit, r.note ?? '']);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...cells.map((c) => c[i].length), ['metric', 'value', 'unit', 'note'][i].length));
  const line = (c: string[]) => `  ${c.map((x, i) => (i === 1 ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join('  ')}`.trimEnd();
  return [
    `\n${name} (${machine.cpus} × ${machine.cpu_model}, node ${machine.node}, load average at start ${machine.load_average_at_start.join(' ')}${machine.load_note ? ' — BUSY' : ''})`,
    line(['metric', 'value', 'unit', 'note']),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
  ].join('\n');
}

/** Median of a non-empty list. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The p-th percentile (0–100, nearest rank) of a non-empty list. */
export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Rounds to `digits` decimals. */
export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Bytes → MiB, two decimals. */
export const mib = (bytes: number) => round(bytes / 2 ** 20, 1);
