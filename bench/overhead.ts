/**
 * Gateway overhead: end-to-end job time over HTTP against the engine called directly, on the
 * same 60 s recording with pocketsphinx, measured in one run.
 *
 * Direct: PocketsphinxEngine.transcribe on the pre-decoded 16 kHz mono WAV (one
 * pocketsphinx_continuous process, output parsed). Gateway: POST the same WAV to a real API
 * process, a real worker process (WORKER_CONCURRENCY=1) runs it; time from the submit request's
 * start until the SSE stream delivers `completed`. The two alternate, BENCH_OVERHEAD_REPEAT
 * times each (default 3), after one warm-up of each; medians.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseEnv } from '../src/config/app-config.js';
import { PocketsphinxConfig } from '../src/engines/pocketsphinx/pocketsphinx.config.js';
import { PocketsphinxEngine } from '../src/engines/pocketsphinx/pocketsphinx.engine.js';
import { envNumber, fixture, scratchDir, runBench } from './lib/env.js';
import { benchSpace, GatewayProcess, removeQueues } from './lib/gateway.js';
import { followJob, getResult, JOBS, submitFile } from './lib/http.js';
import { settleAndDescribe, waitForQuiet } from './lib/machine.js';
import { buildRecording, probeDuration } from './lib/recording.js';
import { median, round, writeResult } from './lib/results.js';

const SECONDS = 60;

async function main(): Promise<void> {
  const repeat = Math.max(1, envNumber('BENCH_OVERHEAD_REPEAT', 3));
  const scratch = scratchDir('overhead');
  const recording = buildRecording(scratch, SECONDS + 1, { exactSeconds: SECONDS, name: 'sixty.wav' });
  const engine = new PocketsphinxEngine(parseEnv(PocketsphinxConfig, process.env).value);
  const space = benchSpace(path.join(scratch, 'run'), 'overhead');
  const procs: GatewayProcess[] = [];

  /** One direct engine call: seconds and words found. */
  const direct = async (file: string, duration: number) => {
    const t0 = performance.now();
    const result = await engine.transcribe({ path: file, duration_sec: duration, max_volume_db: null }, {}, { signal: new AbortController().signal });
    return { seconds: (performance.now() - t0) / 1000, words: result.segments.reduce((n, s) => n + s.words.length, 0) };
  };
  /** One job through the gateway: seconds from submit to the completed event, and words found. */
  const viaGateway = async (api: GatewayProcess, file: string) => {
    const t0 = performance.now();
    const submitted = await submitFile(api.baseUrl!, file, `${JOBS}/transcribe/pocketsphinx`);
    const accepted = performance.now();
    if (submitted.status !== 202) throw new Error(`submission answered ${submitted.status}: ${JSON.stringify(submitted.body)}`);
    const states = await followJob(api.baseUrl!, String(submitted.body.job_id), 10 * 60_000);
    const last = states[states.length - 1];
    if (last.status !== 'completed') throw new Error(`job ended ${last.status}: ${JSON.stringify(last.error)}`);
    const seconds = (last.at - t0) / 1000;
    const result = await getResult(api.baseUrl!, String(submitted.body.job_id));
    // Where the time went, as the SSE client saw it (seconds from the submit request's start).
    const firstAt = (pred: (s: (typeof states)[number]) => boolean) => {
      const hit = states.find(pred);
      return hit ? round((hit.at - t0) / 1000, 3) : null;
    };
    const phases = {
      accepted_s: round((accepted - t0) / 1000, 3),
      processing_s: firstAt((s) => s.status === 'processing'),
      engine_started_s: firstAt((s) => s.stage === 'transcribing'),
      saving_s: firstAt((s) => s.stage === 'saving'),
      completed_s: round(seconds, 3),
    };
    return { seconds, words: result.segments.reduce((n, s) => n + s.words.length, 0), phases };
  };

  try {
    procs.push(await GatewayProcess.start('api', 'api', space));
    procs.push(await GatewayProcess.start('worker', 'worker', space, { WORKER_CONCURRENCY: '1' }));
    const api = procs[0];
    // Warm-up (not counted): page cache for the model files, first-job paths in both processes.
    const clip = fixture('goforward.wav');
    await direct(clip, probeDuration(clip));
    await viaGateway(api, clip);

    const machine = await settleAndDescribe();
    const startedAt = new Date().toISOString();
    const pairs: { direct_s: number; gateway_s: number; ratio: number; direct_words: number; gateway_words: number; gateway_phases: Record<string, number | null>; load_average_at_start: number[] }[] = [];
    for (let r = 0; r < repeat; r++) {
      const load = r === 0 ? machine.load_average_at_start : (await waitForQuiet()).load_average;
      const d = await direct(recording.path, recording.duration);
      const g = await viaGateway(api, recording.path);
      pairs.push({ direct_s: round(d.seconds, 3), gateway_s: round(g.seconds, 3), ratio: round(g.seconds / d.seconds, 3), direct_words: d.words, gateway_words: g.words, gateway_phases: g.phases, load_average_at_start: load });
      console.log(`  repetition ${r + 1}: direct ${round(d.seconds, 2)} s, gateway ${round(g.seconds, 2)} s`);
    }
    const dMed = median(pairs.map((p) => p.direct_s));
    const gMed = median(pairs.map((p) => p.gateway_s));

    writeResult({
      benchmark: 'overhead',
      started_at: startedAt,
      finished_at: new Date().toISOString(),
      machine,
      method:
        `One ${SECONDS} s recording (fixture speech clips joined with 0.8 s pauses, 16 kHz mono WAV). Direct: PocketsphinxEngine.transcribe ` +
        'on that WAV in the benchmark process (one pocketsphinx_continuous run + parsing). Gateway: the same WAV POSTed to ' +
        '/api/transcribe/jobs/transcribe/pocketsphinx of a real API process, run by one real worker process (WORKER_CONCURRENCY=1): ' +
        'upload, ffprobe, storage, Postgres rows, BullMQ, download, decode to 16 kHz mono, the same engine call, saving, completed event over SSE. ' +
        `Time = submit request start → completed event received. Direct and gateway alternate, ${repeat} times each, after one warm-up of each; ratio = median gateway / median direct.`,
      config: { recording_sec: recording.duration, repeat, worker_concurrency: 1 },
      measurements: { pairs },
      headline: [
        { metric: 'direct engine time (60 s audio)', value: round(dMed, 2), unit: 's', note: `median of ${repeat}; RTF ${round(dMed / recording.duration, 3)}` },
        { metric: 'gateway end-to-end time', value: round(gMed, 2), unit: 's', note: `median of ${repeat}; RTF ${round(gMed / recording.duration, 3)}` },
        { metric: 'overhead ratio gateway / direct', value: round(gMed / dMed, 3), unit: '×', note: `per pair ${pairs.map((p) => p.ratio).join(', ')}` },
        { metric: 'overhead', value: round(gMed - dMed, 2), unit: 's', note: `median gateway − median direct; load average at the start of each pair ${pairs.map((p) => p.load_average_at_start[0]).join(', ')}` },
      ],
    });
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await removeQueues(space.queuePrefix);
    rmSync(scratch, { recursive: true, force: true });
  }
}

runBench(main);
