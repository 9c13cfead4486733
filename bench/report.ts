/**
 * Prints the results tables of every benchmark that has a result file (bench/results/*.json),
 * e.g. after `npm run bench`: `node dist/bench/report.js`. With `--markdown`, as Markdown tables
 * (the form bench/README.md keeps them in).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS_DIR } from './lib/env.js';
import { formatTable, type BenchResult } from './lib/results.js';

const markdown = process.argv.includes('--markdown');
const files = existsSync(RESULTS_DIR) ? readdirSync(RESULTS_DIR).filter((f) => f.endsWith('.json')).sort() : [];
if (files.length === 0) {
  console.log(`no results in ${RESULTS_DIR}`);
  process.exit(1);
}
for (const file of files) {
  const r = JSON.parse(readFileSync(path.join(RESULTS_DIR, file), 'utf8')) as BenchResult;
  if (!markdown) {
    console.log(`${formatTable(r.benchmark, r.headline, r.machine)}\n  measured ${r.started_at}`);
    continue;
  }
  const m = r.machine;
  console.log(`\n### ${r.benchmark}\n`);
  console.log(`Measured ${r.started_at.slice(0, 16).replace('T', ' ')} UTC on ${m.cpus} × ${m.cpu_model}, ${m.memory_gib} GiB, Node ${m.node}; load average at start ${m.load_average_at_start.join(' ')}${m.load_note ? ` (**busy**: ${m.load_note})` : ''}.\n`);
  console.log('| metric | value | unit | note |\n|---|---:|---|---|');
  for (const row of r.headline) console.log(`| ${row.metric} | ${row.value} | ${row.unit} | ${row.note ?? ''} |`);
}
