/**
 * Prints the results tables of every benchmark that has a result file (bench/results/*.json),
 * e.g. after `npm run bench`: `node dist/bench/report.js`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS_DIR } from './lib/env.js';
import { formatTable, type BenchResult } from './lib/results.js';

const files = existsSync(RESULTS_DIR) ? readdirSync(RESULTS_DIR).filter((f) => f.endsWith('.json')).sort() : [];
if (files.length === 0) {
  console.log(`no results in ${RESULTS_DIR}`);
  process.exit(1);
}
for (const file of files) {
  const result = JSON.parse(readFileSync(path.join(RESULTS_DIR, file), 'utf8')) as BenchResult;
  console.log(`${formatTable(result.benchmark, result.headline, result.machine)}\n  measured ${result.started_at}`);
}
