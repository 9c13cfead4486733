/**
 * Speech workers: how the speech-aware pipeline scales from 1 to 2 engine slots on the 10-minute
 * recording, end to end through the real gateway.
 *
 * Engines are remote GPUs, so the engine here is a protocol-faithful one whose time is
 * proportional to the audio it receives: the OpenAI-transcription test server
 * (test/support/openai-transcription-server.ts) answering each request after
 * `audio seconds × BENCH_ENGINE_RTF` (default 0.1) with words at the times of the audio it
 * received. A CPU-bound engine (pocketsphinx) would measure contention for the 2 shared cores,
 * not the plan.
 *
 * Per setting: a fresh API process and one worker process (WORKER_CONCURRENCY=2 in both settings)
 * against the bench Postgres and Redis, the `whisper-rocm` adapter pointed at the test server with
 * WHISPER_ROCM_CONCURRENCY = 1 or 2 (the engine's slots: the plan's capacity and the chunk queue's
 * global concurrency). The MP3 of the 10-minute recording is POSTed to
 * /transcribe/whisper-rocm (vad_filter on: decode, Silero VAD, speech-only chunks sized to the
 * capacity, cut in-process) and followed over SSE until completed. Settings alternate (1, 2, 1, 2
 * … BENCH_WORKERS_REPEAT times each); medians.
 *
 * Reported: wall time submit → completed per setting and their ratio; the engine phase (first
 * request received → last answer sent by the engine) and its ratio, which is what the plan's
 * balance decides; the serial rest (upload, decode, VAD, plan, cut, merge, save); the plan (chunk
 * lengths) and the ideal engine-phase ratio for those chunks on 2 slots.
 *
 * Run: `./scripts/bench.sh speech-workers` (or `node dist/bench/speech-workers.js` against a
 * migrated database). Environment: BENCH_LONG_SECONDS (600), BENCH_ENGINE_RTF (0.1),
 * BENCH_WORKERS_REPEAT (2), BENCH_MAX_LOAD / BENCH_LOAD_WAIT_S.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startOpenAiTranscriptionServer, type RecordedRequest } from '../test/support/openai-transcription-server.js';
import { envNumber, runBench, scratchDir } from './lib/env.js';
import { benchSpace, GatewayProcess, removeQueues } from './lib/gateway.js';
import { followJob, getResult, JOBS, submitFile } from './lib/http.js';
import { settleAndDescribe, waitForQuiet, type LoadAtStart } from './lib/machine.js';
import { buildRecording, encodeMp3, probeDuration } from './lib/recording.js';
import { median, round, writeResult } from './lib/results.js';

/** Wall time of `lengths` (seconds) on `slots` slots taken in order, each by the first free slot (BullMQ's order). */
function listSchedule(lengths: number[], slots: number): number {
  const free = new Array<number>(slots).fill(0);
  for (const length of lengths) {
    const i = free.indexOf(Math.min(...free));
    free[i] += length;
  }
  return Math.max(...free);
}

interface Run {
  slots: number;
  wall_s: number;
  /** First engine request received → last answer sent, seconds. */
  engine_phase_s: number;
  /** Wall time outside the engine phase, seconds. */
  serial_s: number;
  /** Seconds from the submit request's start, as the SSE client saw them. */
  phases: Record<string, number | null>;
  /** Audio seconds of each engine request, in arrival order. */
  chunk_s: number[];
  /** Most requests the engine was serving at once. */
  max_in_flight: number;
  words: number;
  load_at_start: LoadAtStart;
}

function maxInFlight(requests: RecordedRequest[]): number {
  const events = requests.flatMap((r) => [[r.receivedAt, 1], [r.answeredAt ?? Infinity, -1]] as [number, number][]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of events) most = Math.max(most, (now += d));
  return most;
}

async function main(): Promise<void> {
  const minSeconds = envNumber('BENCH_LONG_SECONDS', 600);
  const rtf = envNumber('BENCH_ENGINE_RTF', 0.1);
  const repeat = Math.max(1, envNumber('BENCH_WORKERS_REPEAT', 2));
  const scratch = scratchDir('speech-workers');
  console.log(`speech-workers: building a ≥ ${minSeconds} s recording in ${scratch}`);
  const wav = buildRecording(scratch, minSeconds, { name: 'long.wav' });
  const upload = encodeMp3(wav.path, path.join(scratch, 'long.mp3'));
  const duration = probeDuration(wav.path);

  const server = await startOpenAiTranscriptionServer({ realTimeFactor: rtf, words: 'audio' });
  const machine = await settleAndDescribe();
  const startedAt = new Date().toISOString();
  const runs: Run[] = [];
  try {
    const order = Array.from({ length: repeat }, () => [1, 2]).flat();
    for (const [i, slots] of order.entries()) {
      const space = benchSpace(path.join(scratch, `run-${i}`), 'workers');
      const env = {
        WHISPER_ROCM_ENABLED: 'true',
        WHISPER_ROCM_URL: server.url,
        WHISPER_ROCM_CONCURRENCY: String(slots),
        WORKER_CONCURRENCY: '2',
      };
      const procs: GatewayProcess[] = [];
      try {
        procs.push(await GatewayProcess.start(`api-${i}`, 'api', space, env));
        procs.push(await GatewayProcess.start(`worker-${i}`, 'worker', space, env));
        const api = procs[0];
        const load = await waitForQuiet();
        const seen = server.requests.length;
        const t0 = performance.now();
        const submitted = await submitFile(api.baseUrl!, upload, `${JOBS}/transcribe/whisper-rocm`);
        if (submitted.status !== 202) throw new Error(`submission answered ${submitted.status}: ${JSON.stringify(submitted.body)}`);
        const jobId = String(submitted.body.job_id);
        const states = await followJob(api.baseUrl!, jobId, 30 * 60_000);
        const last = states[states.length - 1];
        const wall = (last.at - t0) / 1000;
        if (last.status !== 'completed') throw new Error(`job ${jobId} ended ${last.status}: ${JSON.stringify(last.error)}\n${procs.map((p) => p.logTail(5)).join('\n')}`);
        const result = await getResult(api.baseUrl!, jobId);
        const calls = server.requests.slice(seen).filter((r) => r.path === '/v1/audio/transcriptions');
        if (calls.some((c) => c.status !== 200)) throw new Error(`engine answered ${calls.map((c) => c.status).join(', ')}`);
        const enginePhase = (Math.max(...calls.map((c) => c.answeredAt!)) - Math.min(...calls.map((c) => c.receivedAt))) / 1000;
        const firstAt = (pred: (s: (typeof states)[number]) => boolean) => {
          const hit = states.find(pred);
          return hit ? round((hit.at - t0) / 1000, 2) : null;
        };
        const run: Run = {
          slots,
          wall_s: round(wall, 2),
          engine_phase_s: round(enginePhase, 2),
          serial_s: round(wall - enginePhase, 2),
          phases: {
            first_engine_request_s: round((Math.min(...calls.map((c) => c.receivedAt)) - t0) / 1000, 2),
            chunks_queued_s: firstAt((s) => s.chunks_total !== undefined),
            last_engine_answer_s: round((Math.max(...calls.map((c) => c.answeredAt!)) - t0) / 1000, 2),
            completed_s: round(wall, 2),
          },
          chunk_s: calls.map((c) => round(c.file?.wav?.durationSec ?? 0, 2)),
          max_in_flight: maxInFlight(calls),
          words: result.segments.reduce((n, s) => n + s.words.length, 0),
          load_at_start: load,
        };
        runs.push(run);
        console.log(`  ${slots} slot(s): ${run.wall_s} s (engine phase ${run.engine_phase_s} s, rest ${run.serial_s} s), ${calls.length} chunks [${run.chunk_s.join(', ')}] s, ≤ ${run.max_in_flight} at once; load ${load.load_average.join(' ')}`);
      } finally {
        for (const p of procs.reverse()) await p.stop();
        await removeQueues(space.queuePrefix);
      }
    }
  } finally {
    await server.close();
  }

  const med = (slots: number, k: 'wall_s' | 'engine_phase_s' | 'serial_s') => median(runs.filter((r) => r.slots === slots).map((r) => r[k]));
  const speedup = med(1, 'wall_s') / med(2, 'wall_s');
  const engineSpeedup = med(1, 'engine_phase_s') / med(2, 'engine_phase_s');
  const plan1 = runs.find((r) => r.slots === 1)!.chunk_s;
  const plan2 = runs.find((r) => r.slots === 2)!.chunk_s;
  // What the plans allow with no overhead at all: engine time on 1 slot over the 2-slot list schedule.
  const idealEngine = plan1.reduce((a, b) => a + b, 0) / listSchedule(plan2, 2);
  const balance = (p: number[]) => round(Math.max(...p) / Math.min(...p), 2);
  const loads = (slots: number) => runs.filter((r) => r.slots === slots).map((r) => r.load_at_start.load_average[0]).join(', ');
  console.log(`  speedup 1 → 2 slots: end to end ×${round(speedup, 2)}, engine phase ×${round(engineSpeedup, 2)} (plan ideal ×${round(idealEngine, 2)})`);
  rmSync(scratch, { recursive: true, force: true });

  writeResult({
    benchmark: 'speech-workers',
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    method:
      `A ${round(duration, 1)} s recording (fixture speech clips joined with 0.8 s pauses, MP3 44.1 kHz stereo 128 kbit/s) POSTed to ` +
      '/transcribe/whisper-rocm of a real API process and followed over SSE until completed; one real worker process ' +
      '(WORKER_CONCURRENCY=2) runs the speech-aware pipeline (decode, Silero VAD, speech-only chunks sized to capacity, in-process cutting, ' +
      `merge) against real Postgres and Redis. The engine is the OpenAI-transcription test server answering each request after audio seconds × ${rtf} ` +
      'with words at the received audio\'s times (a GPU replica per slot, no CPU used). Settings: WHISPER_ROCM_CONCURRENCY=1 vs 2 ' +
      '(the plan\'s capacity and the chunk queue\'s global concurrency), fresh processes each, alternated, medians. Engine phase = first ' +
      'request received → last answer sent; serial rest = wall − engine phase.',
    config: { recording_s: round(duration, 3), engine_rtf: rtf, repeat, worker_concurrency: 2 },
    measurements: { runs, ideal_engine_speedup_for_plans: round(idealEngine, 3) },
    headline: [
      { metric: 'wall time, 1 engine slot', value: round(med(1, 'wall_s'), 1), unit: 's', note: `${plan1.length} chunks, longest/shortest ${balance(plan1)}; engine phase ${round(med(1, 'engine_phase_s'), 1)} s; load ${loads(1)}` },
      { metric: 'wall time, 2 engine slots', value: round(med(2, 'wall_s'), 1), unit: 's', note: `${plan2.length} chunks, longest/shortest ${balance(plan2)}; engine phase ${round(med(2, 'engine_phase_s'), 1)} s; load ${loads(2)}` },
      { metric: 'speedup 1 → 2 slots, end to end', value: round(speedup, 2), unit: '×', note: `goal ≥ 1.8; serial rest (upload, decode, VAD, plan, cut, merge) ${round(med(1, 'serial_s'), 1)} / ${round(med(2, 'serial_s'), 1)} s` },
      { metric: 'speedup 1 → 2 slots, engine phase', value: round(engineSpeedup, 2), unit: '×', note: `the plan's balance; ideal for these chunks ${round(idealEngine, 2)}×` },
    ],
  });
}

runBench(main);
