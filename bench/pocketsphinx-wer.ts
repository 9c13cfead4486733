/**
 * Pocketsphinx accuracy: word error rate (WER) of the embedded engine on every fixture that has a
 * reference transcript (fixtures/audio/references.trn), per fixture and pooled.
 *
 * Each fixture goes the gateway's way: AudioService.normalize (any rate/channels → 16 kHz mono
 * s16le WAV), then PocketsphinxEngine.transcribe (one pocketsphinx_continuous run). WER =
 * (substitutions + deletions + insertions) / reference words after lower-casing and stripping
 * punctuation (test/support/wer.ts, the pooled sclite definition).
 *
 * Settings compared: the engine as shipped (its decoder arguments, POCKETSPHINX_DECODER_ARGS in
 * pocketsphinx.engine.ts), pocketsphinx's own defaults when those differ, plus any
 * candidates in BENCH_PS_CANDIDATES (`;`-separated argument lists, e.g. `-lw 5;-lw 5 -wip 0.5`).
 * The fixtures are split into a tuning half and a held-back half (TUNING below): settings were
 * chosen on the tuning half and kept only if they also lowered WER on the held-back half without
 * raising it on any fixture.
 *
 * Run: `./scripts/bench.sh pocketsphinx-wer` (no Postgres or Redis needed: also
 * `npx tsc -p tsconfig.build.json && node dist/bench/pocketsphinx-wer.js`). Two fixtures decode at
 * once (2 cores). Accuracy does not depend on the machine's load; the times in the result do.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AudioService } from '../src/audio/audio.service.js';
import { loadConfig, parseEnv } from '../src/config/app-config.js';
import { PocketsphinxConfig } from '../src/engines/pocketsphinx/pocketsphinx.config.js';
import { POCKETSPHINX_DECODER_ARGS, PocketsphinxEngine } from '../src/engines/pocketsphinx/pocketsphinx.engine.js';
import { editDistance, normalizeText, references } from '../test/support/wer.js';
import { fixture, runBench, scratchDir } from './lib/env.js';
import { settleAndDescribe } from './lib/machine.js';
import { round, writeResult } from './lib/results.js';
import { rmSync } from 'node:fs';

/** Fixture id (references.trn) → file under fixtures/audio. */
const FIXTURES: [string, string][] = [
  ['libri_0870', 'libri_0870.wav'], ['libri_0880', 'libri_0880.wav'], ['libri_0890', 'libri_0890.wav'],
  ['libri_0920', 'libri_0920.wav'], ['libri_0930', 'libri_0930.wav'], ['jfk', 'jfk.wav'], ['goforward', 'goforward.wav'],
  ['tidigits_2934z', 'tidigits_2934z.wav'],
  ...Array.from({ length: 10 }, (_, i) => [`tts_h${String(i + 1).padStart(2, '0')}`, `tts/h_${String(i + 1).padStart(2, '0')}.wav`] as [string, string]),
];

/** The half the settings were tuned on; the rest is held back to confirm them. */
const TUNING = new Set(['libri_0870', 'libri_0890', 'jfk', 'goforward', 'tts_h01', 'tts_h02', 'tts_h03', 'tts_h04', 'tts_h05']);

interface FixtureScore {
  id: string;
  set: 'tuning' | 'held-back';
  reference_words: number;
  errors: number;
  wer: number;
  hypothesis: string;
  seconds: number;
}

const pooled = (scores: FixtureScore[]) => {
  const words = scores.reduce((n, s) => n + s.reference_words, 0);
  return words ? scores.reduce((n, s) => n + s.errors, 0) / words : 0;
};

/** Runs `work` over `items`, `parallel` at a time, keeping the order of the results. */
async function mapLimit<T, R>(items: T[], parallel: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]);
    }
  }));
  return out;
}

async function main(): Promise<void> {
  const scratch = scratchDir('ps-wer');
  const machine = await settleAndDescribe();
  const startedAt = new Date().toISOString();
  const audio = new AudioService(loadConfig({ ...process.env }));
  const config = parseEnv(PocketsphinxConfig, process.env).value;
  const refs = references();
  const prepared = await mapLimit(FIXTURES, 2, async ([id, file]) => ({ id, audio: await audio.normalize(fixture(file), path.join(scratch, `${id}.wav`)) }));

  const settings: { name: string; args: string[] }[] = [
    { name: 'shipped', args: [...POCKETSPHINX_DECODER_ARGS] },
    // Shipped with no extra arguments is pocketsphinx's defaults: measured once.
    ...(POCKETSPHINX_DECODER_ARGS.length ? [{ name: 'pocketsphinx defaults', args: [] }] : []),
    ...(process.env.BENCH_PS_CANDIDATES ?? '').split(';').map((c) => c.trim()).filter(Boolean).map((c) => ({ name: c, args: c.split(/\s+/) })),
  ];
  const results: { name: string; args: string[]; pooled: number; tuning: number; held_back: number; read_speech: number; fixtures: FixtureScore[] }[] = [];
  for (const setting of settings) {
    const engine = new PocketsphinxEngine(config, { decoderArgs: setting.args });
    const fixtures = await mapLimit(prepared, 2, async ({ id, audio: a }): Promise<FixtureScore> => {
      const t0 = performance.now();
      const result = await engine.transcribe(a, {}, { signal: new AbortController().signal });
      const ref = normalizeText(refs.get(id)!);
      const errors = editDistance(ref, normalizeText(result.text));
      return { id, set: TUNING.has(id) ? 'tuning' : 'held-back', reference_words: ref.length, errors, wer: round(errors / ref.length, 3), hypothesis: result.text, seconds: round((performance.now() - t0) / 1000, 2) };
    });
    const row = {
      name: setting.name,
      args: setting.args,
      pooled: round(pooled(fixtures), 4),
      tuning: round(pooled(fixtures.filter((f) => f.set === 'tuning')), 4),
      held_back: round(pooled(fixtures.filter((f) => f.set === 'held-back')), 4),
      read_speech: round(pooled(fixtures.filter((f) => !f.id.startsWith('tts_'))), 4),
      fixtures,
    };
    results.push(row);
    console.log(`  ${setting.name} (${setting.args.join(' ') || 'no extra arguments'}): pooled ${row.pooled}, tuning ${row.tuning}, held-back ${row.held_back}, read speech ${row.read_speech}`);
    console.log(`    ${fixtures.map((f) => `${f.id} ${f.wer}`).join(', ')}`);
  }
  rmSync(scratch, { recursive: true, force: true });

  const shipped = results[0];
  // What the shipped setting is compared with: pocketsphinx's defaults, else the first candidate.
  const other = results[1];
  const vs = (pick: (r: (typeof results)[number]) => string | number) => (other ? `${other.name}: ${pick(other)}` : '');
  writeResult({
    benchmark: 'pocketsphinx-wer',
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    method:
      'Every fixture with a reference (references.trn) decoded to 16 kHz mono by AudioService.normalize and transcribed by ' +
      'PocketsphinxEngine.transcribe (Debian pocketsphinx 5prealpha, en-us model). WER = word edit distance / reference words, ' +
      'lower case without punctuation (test/support/wer.ts); pooled = summed errors / summed reference words. Tuning half: ' +
      `${[...TUNING].join(', ')}; the rest held back.`,
    config: { settings: settings.map((s) => ({ name: s.name, args: s.args })) },
    measurements: { results },
    headline: [
      ...shipped.fixtures.map((f) => ({ metric: `WER ${f.id}`, value: f.wer, unit: '', note: `${f.errors}/${f.reference_words} words; ${f.set}` })),
      { metric: 'WER pooled, all fixtures', value: shipped.pooled, unit: '', note: `shipped (${shipped.args.join(' ') || 'pocketsphinx defaults'}); ${vs((r) => r.pooled)}` },
      { metric: 'WER pooled, read speech (no TTS)', value: shipped.read_speech, unit: '', note: vs((r) => r.read_speech) },
      { metric: 'WER pooled, tuning / held-back halves', value: `${shipped.tuning} / ${shipped.held_back}`, unit: '', note: vs((r) => `${r.tuning} / ${r.held_back}`) },
    ],
  });
}

runBench(main);
