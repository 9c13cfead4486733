/**
 * Long audio: the silence-aware chunk pipeline on one ≥ 10-minute recording.
 *
 * 1. Audio preparation: the gateway's own steps (AudioService.normalize of the upload to 16 kHz
 *    mono, detectSilences, planChunks, one normalize per chunk cut from the decoded WAV — what
 *    TranscriptionRunner.split does, without the storage writes) against plain ffmpeg doing the
 *    same decode and the same cuts in one command (`-f segment -segment_times`). Alternated,
 *    BENCH_PREP_REPEAT times each (default 3); medians.
 * 2. Wall time submit → completed (SSE) with 1 worker process (WORKER_CONCURRENCY=1), then with
 *    2 worker processes (1 each), each against a fresh API process: speedup = t1 / t2,
 *    RTF = t / recording duration.
 *
 * Environment: BENCH_LONG_SECONDS (default 600), BENCH_REPEAT (gateway runs per setting, default 1,
 * alternated), BENCH_PREP_REPEAT, and the gateway's own CHUNK_* / CHUNKING_THRESHOLD (passed on
 * to the workers too).
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { AudioService } from '../src/audio/audio.service.js';
import { planChunks } from '../src/transcription/long-audio/chunk-plan.js';
import { loadConfig, parseEnv } from '../src/config/app-config.js';
import { PocketsphinxConfig } from '../src/engines/pocketsphinx/pocketsphinx.config.js';
import { PocketsphinxEngine } from '../src/engines/pocketsphinx/pocketsphinx.engine.js';
import { envNumber, scratchDir, runBench } from './lib/env.js';
import { benchSpace, GatewayProcess, removeQueues } from './lib/gateway.js';
import { followJob, getResult, JOBS, submitFile } from './lib/http.js';
import { settleAndDescribe, waitForQuiet, type LoadAtStart } from './lib/machine.js';
import { buildRecording, encodeMp3 } from './lib/recording.js';
import { median, round, writeResult } from './lib/results.js';

const seconds = (ms: number) => round(ms / 1000, 3);

async function main(): Promise<void> {
  const minSeconds = envNumber('BENCH_LONG_SECONDS', 600);
  const repeat = Math.max(1, envNumber('BENCH_REPEAT', 1));
  const prepRepeat = Math.max(1, envNumber('BENCH_PREP_REPEAT', 3));
  const scratch = scratchDir('long-audio');
  console.log(`long-audio: building a ≥ ${minSeconds} s recording in ${scratch}`);
  const wav = buildRecording(scratch, minSeconds, { name: 'long.wav' });
  const upload = encodeMp3(wav.path, path.join(scratch, 'long.mp3'));

  const machine = await settleAndDescribe();
  const startedAt = new Date().toISOString();
  const config = loadConfig({ ...process.env });
  const engine = new PocketsphinxEngine(parseEnv(PocketsphinxConfig, process.env).value);
  // The runner's chunking settings for this engine (TranscriptionRunner.chunking): its own, else the gateway's.
  const target = engine.capabilities.chunk_duration_sec ?? config.CHUNK_DURATION;
  const threshold = engine.capabilities.chunking_threshold_sec ?? config.CHUNKING_THRESHOLD;
  const audio = new AudioService(config);

  // --- 1. audio preparation: the gateway's steps vs plain ffmpeg, alternated -----------------
  const gatewayPrep: { normalize: number; silences: number; plan: number; cut: number; total: number }[] = [];
  const ffmpegPrep: number[] = [];
  let plan: ReturnType<typeof planChunks> = [];
  let silenceCount = 0;
  let decodedDuration = 0;
  for (let r = 0; r < prepRepeat; r++) {
    const dir = path.join(scratch, `prep-${r}`);
    mkdirSync(path.join(dir, 'gateway'), { recursive: true });
    mkdirSync(path.join(dir, 'ffmpeg'), { recursive: true });
    const t0 = performance.now();
    const normalized = await audio.normalize(upload, path.join(dir, 'gateway', 'audio.wav'));
    const t1 = performance.now();
    const silences = await audio.detectSilences(normalized.path, normalized.duration_sec, { noiseDb: config.CHUNK_SILENCE_DB, minSilenceSec: config.CHUNK_MIN_SILENCE });
    const t2 = performance.now();
    plan = normalized.duration_sec > threshold
      ? planChunks(normalized.duration_sec, silences, { target, minPause: config.CHUNK_MIN_SILENCE, blindOverlap: config.CHUNK_BLIND_OVERLAP })
      : [{ index: 0, start: 0, end: normalized.duration_sec, core_start: 0, core_end: normalized.duration_sec, cut: 'end' }];
    const t3 = performance.now();
    for (const chunk of plan) {
      await audio.normalize(normalized.path, path.join(dir, 'gateway', `piece-${chunk.index}.wav`), { startSec: chunk.start, endSec: chunk.end });
    }
    const t4 = performance.now();
    gatewayPrep.push({ normalize: t1 - t0, silences: t2 - t1, plan: t3 - t2, cut: t4 - t3, total: t4 - t0 });
    silenceCount = silences.length;
    decodedDuration = normalized.duration_sec;

    // Plain ffmpeg: one decode to 16 kHz mono and the same cut points, in one command.
    const cuts = plan.slice(0, -1).map((c) => c.core_end.toFixed(3)).join(',');
    const f0 = performance.now();
    execFileSync('ffmpeg', [
      '-nostdin', '-v', 'error', '-y', '-i', upload, '-map', '0:a:0', '-ac', '1', '-ar', '16000', '-c:a', 'pcm_s16le',
      ...(cuts ? ['-f', 'segment', '-segment_times', cuts] : ['-f', 'segment', '-segment_time', '100000']),
      path.join(dir, 'ffmpeg', 'piece-%03d.wav'),
    ]);
    ffmpegPrep.push(performance.now() - f0);
    const pieces = readdirSync(path.join(dir, 'ffmpeg')).length;
    if (pieces !== plan.length) throw new Error(`plain ffmpeg produced ${pieces} pieces, the plan has ${plan.length}`);
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (k: keyof (typeof gatewayPrep)[number]) => median(gatewayPrep.map((g) => g[k]));
  const prepRatio = med('total') / median(ffmpegPrep);
  const sameWorkRatio = (med('normalize') + med('cut')) / median(ffmpegPrep);
  const blind = plan.filter((c) => c.cut === 'blind').length;
  console.log(`  preparation: gateway ${seconds(med('total'))} s, plain ffmpeg ${seconds(median(ffmpegPrep))} s (${plan.length} chunks)`);

  // --- 2. the pipeline end to end: 1 worker vs 2 workers --------------------------------------
  const order = Array.from({ length: repeat }, () => [1, 2]).flat();
  const runs: { workers: number; wall_s: number; rtf: number; chunks: number | null; worker_ids: string[]; segments: number | null; words: number; status: string; phases: Record<string, number | null>; load_at_start: LoadAtStart }[] = [];
  for (const [i, workers] of order.entries()) {
    const space = benchSpace(path.join(scratch, `run-${i}`), 'long');
    const procs: GatewayProcess[] = [];
    try {
      procs.push(await GatewayProcess.start(`api-${i}`, 'api', space));
      for (let w = 0; w < workers; w++) procs.push(await GatewayProcess.start(`worker-${i}-${w}`, 'worker', space, { WORKER_CONCURRENCY: '1' }));
      const api = procs[0];
      const load = await waitForQuiet();
      const t0 = performance.now();
      const submitted = await submitFile(api.baseUrl!, upload, `${JOBS}/transcribe/pocketsphinx`);
      const acceptedAt = performance.now();
      if (submitted.status !== 202) throw new Error(`submission answered ${submitted.status}: ${JSON.stringify(submitted.body)}`);
      const jobId = String(submitted.body.job_id);
      const states = await followJob(api.baseUrl!, jobId, 60 * 60_000);
      const last = states[states.length - 1];
      const wall = (last.at - t0) / 1000;
      if (last.status !== 'completed') throw new Error(`job ${jobId} ended ${last.status}: ${JSON.stringify(last.error)}\n${procs.map((p) => p.logTail(5)).join('\n')}`);
      const result = await getResult(api.baseUrl!, jobId);
      const firstAt = (pred: (s: (typeof states)[number]) => boolean) => {
        const hit = states.find(pred);
        return hit ? round((hit.at - t0) / 1000, 2) : null;
      };
      // Where the time went, as the SSE client saw it (seconds from the submit request's start).
      const phases = {
        accepted_s: round((acceptedAt - t0) / 1000, 2),
        chunks_queued_s: firstAt((s) => s.chunks_total !== undefined),
        first_chunk_done_s: firstAt((s) => (s.chunks_done ?? 0) >= 1),
        last_chunk_done_s: firstAt((s) => s.chunks_total !== undefined && s.chunks_done === s.chunks_total),
        completed_s: round(wall, 2),
      };
      const workerIds = [...new Set(states.filter((s) => s.stage === 'transcribing' && s.chunks_done && s.worker_id).map((s) => s.worker_id!))];
      runs.push({
        workers,
        wall_s: round(wall, 2),
        rtf: round(wall / decodedDuration, 4),
        chunks: states.reduce<number | null>((n, s) => s.chunks_total ?? n, null),
        worker_ids: workerIds,
        segments: last.result?.segments_count ?? null,
        words: result.segments.reduce((n, s) => n + s.words.length, 0),
        status: last.status,
        phases,
        load_at_start: load,
      });
      console.log(`  ${workers} worker(s): ${round(wall, 1)} s (RTF ${round(wall / decodedDuration, 3)}), chunks finished by ${workerIds.length} worker(s); load average at start ${load.load_average.join(' ')}`);
    } finally {
      for (const p of procs.reverse()) await p.stop();
      await removeQueues(space.queuePrefix);
    }
  }
  const t1 = median(runs.filter((r) => r.workers === 1).map((r) => r.wall_s));
  const t2 = median(runs.filter((r) => r.workers === 2).map((r) => r.wall_s));
  const chunks = runs[0]?.chunks ?? plan.length;
  // With equal chunks and no fixed costs, 2 workers need ceil(n/2) rounds instead of n.
  const idealSpeedup = chunks / Math.ceil(chunks / 2);
  const loadNote = (workers: number) => `load average at start ${runs.filter((r) => r.workers === workers).map((r) => r.load_at_start.load_average[0]).join(', ')}`;

  writeResult({
    benchmark: 'long-audio',
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    method:
      `A ${round(decodedDuration, 1)} s recording (fixture speech clips joined with 0.8 s pauses, encoded as MP3 44.1 kHz stereo 128 kbit/s) ` +
      'submitted over HTTP to a real API process (node dist/src/main.js, APP_ROLE=api) and followed over SSE until completed; ' +
      'worker processes (APP_ROLE=worker, WORKER_CONCURRENCY=1) run the pipeline with pocketsphinx. Wall time = submit request start → ' +
      'completed event received. Each setting gets fresh processes and its own queue prefix. Preparation: the gateway\'s AudioService.normalize + ' +
      'detectSilences + planChunks + per-chunk normalize (as TranscriptionRunner.split, without storage writes) vs one plain ffmpeg command ' +
      '(decode to 16 kHz mono s16le, -f segment -segment_times at the same cut points), alternated, medians.',
    config: {
      recording_sec: round(decodedDuration, 3),
      upload: 'mp3 44.1 kHz stereo 128k',
      chunk_target_sec: target,
      chunking_threshold_sec: threshold,
      chunk_silence_db: config.CHUNK_SILENCE_DB,
      chunk_min_silence_sec: config.CHUNK_MIN_SILENCE,
      repeat,
      prep_repeat: prepRepeat,
    },
    measurements: {
      plan: plan.map((c) => ({ start: c.start, end: c.end, cut: c.cut })),
      pauses_detected: silenceCount,
      blind_cuts: blind,
      preparation_gateway_ms: gatewayPrep.map((g) => Object.fromEntries(Object.entries(g).map(([k, v]) => [k, round(v, 1)]))),
      preparation_plain_ffmpeg_ms: ffmpegPrep.map((v) => round(v, 1)),
      runs,
      ideal_speedup_for_chunk_count: round(idealSpeedup, 2),
    },
    headline: [
      { metric: 'recording', value: round(decodedDuration, 1), unit: 's', note: `${chunks} chunks of ~${target} s, ${blind} blind cut(s)` },
      { metric: 'wall time, 1 worker', value: round(t1, 1), unit: 's', note: loadNote(1) },
      { metric: 'wall time, 2 workers', value: round(t2, 1), unit: 's', note: loadNote(2) },
      { metric: 'speedup 1 → 2 workers', value: round(t1 / t2, 2), unit: '×', note: `ideal ${round(idealSpeedup, 2)}× for ${chunks} equal chunks on 2 workers` },
      { metric: 'pipeline RTF, 1 worker', value: round(t1 / decodedDuration, 3), unit: '', note: 'wall time / audio duration' },
      { metric: 'pipeline RTF, 2 workers', value: round(t2 / decodedDuration, 3), unit: '' },
      { metric: 'audio prep, gateway', value: seconds(med('total')), unit: 's', note: `decode ${seconds(med('normalize'))} + pauses ${seconds(med('silences'))} + plan ${seconds(med('plan'))} + cut ${seconds(med('cut'))}` },
      { metric: 'audio prep, plain ffmpeg', value: seconds(median(ffmpegPrep)), unit: 's', note: 'one command: decode + segment at the same cuts' },
      { metric: 'audio prep ratio gateway / ffmpeg', value: round(prepRatio, 2), unit: '×', note: 'gateway total, pause detection included' },
      { metric: 'audio prep ratio, same work', value: round(sameWorkRatio, 2), unit: '×', note: 'gateway decode + cut only (no pause detection) / ffmpeg' },
    ],
  });
  rmSync(scratch, { recursive: true, force: true });
}

runBench(main);
