/**
 * Ingest: what the API process takes in, without workers.
 *
 * 1. Throughput: BENCH_INGEST_N (default 3000) submissions of goforward.wav (2.8 s, 89 KB WAV),
 *    BENCH_INGEST_CONCURRENCY (default 32) in flight over keep-alive connections (the multipart
 *    body encoded once: ClipSubmitter), against one API process; accepted (202) per second of
 *    wall time, p50/p95/p99 latency, CPU per submission of the API process and of the client.
 *    The ffprobe paths, about 50× slower, get BENCH_INGEST_SLOW_N (default 300) submissions.
 *    The queued jobs are then removed (the run's queue prefix deleted).
 *    Ingest paths side by side in one run, BENCH_INGEST_ROUNDS (default 2) rounds in alternating
 *    order, a fresh API process each: INGEST_PROBE=header, INGEST_PROBE=ffprobe and, when
 *    BENCH_INGEST_BASELINE names another build's `src/main.js` (e.g. the previous commit's), that
 *    build; the ratio header / baseline (else / ffprobe) is reported.
 * 2. SSE: RSS growth of a fresh API process with BENCH_SSE_STREAMS (default 1,000) concurrent
 *    streams open on 10 queued jobs, held for 10 s (two of the streams' 5 s re-reads).
 * 3. Upload: RSS growth of a fresh API process while one BENCH_UPLOAD_BYTES (default 1 GiB) WAV is
 *    uploaded with a streaming request body (generated on the fly, never whole in memory).
 *
 * RSS is VmRSS from /proc/<pid>/status sampled every 100 ms, against a baseline taken idle just
 * before; VmHWM (the kernel's own peak, reset through clear_refs before each phase) is reported too.
 * BENCH_INGEST_PARTS (default `throughput,sse,upload`) picks the parts to run.
 */
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { envNumber, fixture, scratchDir, runBench } from './lib/env.js';
import { benchSpace, GatewayProcess, removeQueues, type BenchSpace } from './lib/gateway.js';
import { ClipSubmitter, holdStream, JOBS, submitBytes } from './lib/http.js';
import { settleAndDescribe, waitForQuiet } from './lib/machine.js';
import { median, mib, percentile, round, writeResult } from './lib/results.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Samples a process's VmRSS every `intervalMs` until stop(). */
class RssSampler {
  readonly samples: { t: number; rss: number }[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly t0 = performance.now();

  constructor(private readonly proc: GatewayProcess, intervalMs = 100) {
    this.take();
    this.timer = setInterval(() => this.take(), intervalMs);
  }

  private take(): void {
    try {
      this.samples.push({ t: (performance.now() - this.t0) / 1000, rss: this.proc.rss() });
    } catch {
      /* the process is gone */
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.take();
  }

  max(fromSec = 0): number {
    return Math.max(...this.samples.filter((s) => s.t >= fromSec).map((s) => s.rss));
  }
}

/** Median VmRSS over `ms` of idle time (samples every 100 ms). */
async function idleRss(proc: GatewayProcess, ms = 1000): Promise<number> {
  const values: number[] = [];
  for (let t = 0; t < ms; t += 100) {
    values.push(proc.rss());
    await sleep(100);
  }
  return median(values);
}

/** Runs `fn` with a fresh API process of the run's space; stops it and removes its queues afterwards. */
async function withApi<T>(space: BenchSpace, name: string, env: Record<string, string>, fn: (api: GatewayProcess) => Promise<T>, main?: string): Promise<T> {
  const api = await GatewayProcess.start(name, 'api', space, env, main);
  try {
    return await fn(api);
  } finally {
    await api.stop();
    await removeQueues(space.queuePrefix);
  }
}

/** One ingest path measured by the throughput part. */
interface IngestVariant {
  name: 'header' | 'ffprobe' | 'baseline';
  label: string;
  env: Record<string, string>;
  /** Entry point of another build (the baseline); this build's by default. */
  main?: string;
}

type ThroughputRun = Awaited<ReturnType<typeof measureThroughput>>;

/**
 * `n` submissions of `clip`, `concurrency` in flight over as many keep-alive connections
 * (ClipSubmitter: the body encoded once), after 32 warm-up submissions (not counted: the first
 * requests compile routes and open pool connections). The client's own CPU is reported beside the
 * API's: both share the machine's cores.
 */
async function measureThroughput(api: GatewayProcess, clip: Buffer, submitRoute: string, n: number, concurrency: number) {
  const client = new ClipSubmitter(api.baseUrl!, clip, 'goforward.wav', submitRoute, concurrency);
  try {
    await Promise.all(Array.from({ length: 32 }, () => client.submit()));
    const load = await waitForQuiet();
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    let next = 0;
    const cpu0 = api.cpuSeconds();
    const clientCpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          next++;
          const s = performance.now();
          const status = await client.submit();
          latencies.push(performance.now() - s);
          statuses[status] = (statuses[status] ?? 0) + 1;
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const clientCpu = process.cpuUsage(clientCpu0);
    const accepted = statuses['202'] ?? 0;
    const cpu = api.cpuSeconds() - cpu0;
    return {
      submissions: n,
      wall_s: round(wall, 3),
      accepted,
      statuses,
      accepted_per_s: round(accepted / wall, 1),
      latency_ms: { p50: round(percentile(latencies, 50), 1), p95: round(percentile(latencies, 95), 1), p99: round(percentile(latencies, 99), 1), max: round(Math.max(...latencies), 1) },
      api_cpu_s: round(cpu, 2),
      api_cpu_ms_per_submission: round((cpu * 1000) / n, 2),
      client_cpu_ms_per_submission: round((clientCpu.user + clientCpu.system) / 1000 / n, 2),
      load_average_at_start: load.load_average,
    };
  } finally {
    client.close();
  }
}

/** A 16-bit mono 16 kHz WAV header (44 bytes, canonical) for `dataBytes` bytes of samples. */
function wavHeader(dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(16000, 24);
  h.writeUInt32LE(32000, 28); // bytes per second
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/**
 * Streams a multipart body holding one WAV of `fileBytes` bytes (header + low-level noise) to the
 * submit endpoint: a generator feeds http.request with backpressure, 1 MiB at a time.
 * @returns status, parsed body, seconds until the body was sent and until the answer arrived.
 */
function streamUpload(baseUrl: string, fileBytes: number): Promise<{ status: number; body: unknown; sent_s: number; answered_s: number }> {
  const boundary = `----gw-bench-${Math.random().toString(36).slice(2)}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="one-gib.wav"\r\nContent-Type: audio/wav\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const noise = Buffer.alloc(1 << 20);
  for (let i = 0; i < noise.length; i += 2) noise.writeInt16LE(Math.round((Math.random() - 0.5) * 200), i);
  async function* body() {
    yield head;
    yield wavHeader(fileBytes - 44);
    for (let left = fileBytes - 44; left > 0; left -= noise.length) yield left >= noise.length ? noise : noise.subarray(0, left);
    yield tail;
  }
  const url = new URL(`${baseUrl}${JOBS}/transcribe/pocketsphinx`);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    let sent = 0;
    const req = http.request(
      { method: 'POST', hostname: url.hostname, port: url.port, path: url.pathname, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': head.length + fileBytes + tail.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try { parsed = JSON.parse(text); } catch { /* not JSON */ }
          resolve({ status: res.statusCode ?? 0, body: parsed, sent_s: sent || (performance.now() - t0) / 1000, answered_s: (performance.now() - t0) / 1000 });
        });
      },
    );
    req.on('error', reject);
    req.on('finish', () => (sent = (performance.now() - t0) / 1000));
    Readable.from(body()).pipe(req);
  });
}

async function main(): Promise<void> {
  const n = envNumber('BENCH_INGEST_N', 3000);
  const slowN = Math.min(n, envNumber('BENCH_INGEST_SLOW_N', 300));
  const concurrency = envNumber('BENCH_INGEST_CONCURRENCY', 32);
  const streams = envNumber('BENCH_SSE_STREAMS', 1000);
  const uploadBytes = envNumber('BENCH_UPLOAD_BYTES', 2 ** 30);
  const rounds = envNumber('BENCH_INGEST_ROUNDS', 2);
  const baselineMain = process.env.BENCH_INGEST_BASELINE ? path.resolve(process.env.BENCH_INGEST_BASELINE) : null;
  const parts = new Set((process.env.BENCH_INGEST_PARTS ?? 'throughput,sse,upload').split(',').map((p) => p.trim()));
  const scratch = scratchDir('ingest');
  const space = benchSpace(scratch, 'ingest');
  const clipPath = fixture('goforward.wav');
  const clip = readFileSync(clipPath);
  const submitRoute = `${JOBS}/transcribe/pocketsphinx`;

  const machine = await settleAndDescribe();
  const startedAt = new Date().toISOString();
  try {
    // --- 1. accepted submissions per second, ingest paths side by side --------------------------
    // Every variant gets a fresh API process per round; rounds alternate the order so that a
    // change in the machine's load hits each variant alike.
    const variants: IngestVariant[] = [
      { name: 'header', label: 'INGEST_PROBE=header (this build)', env: { INGEST_PROBE: 'header' } },
      { name: 'ffprobe', label: 'INGEST_PROBE=ffprobe (this build, ffprobe on every submission)', env: { INGEST_PROBE: 'ffprobe' } },
      ...(baselineMain ? [{ name: 'baseline' as const, label: 'previous build (BENCH_INGEST_BASELINE)', env: {}, main: baselineMain }] : []),
    ];
    const throughput = !parts.has('throughput') ? null : await (async () => {
      const runs: Record<string, ThroughputRun[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? variants : [...variants].reverse();
        for (const variant of order) {
          const count = variant.name === 'header' ? n : slowN;
          const run = await withApi(space, `api-throughput-${variant.name}-${round}`, variant.env, (api) => measureThroughput(api, clip, submitRoute, count, concurrency), variant.main);
          runs[variant.name].push(run);
          console.log(`  throughput ${variant.name} (round ${round + 1}/${rounds}): ${run.accepted_per_s} accepted/s (${run.accepted}/${count}, p50 ${run.latency_ms.p50} ms, p95 ${run.latency_ms.p95} ms, API CPU ${run.api_cpu_ms_per_submission} ms/submission, client CPU ${run.client_cpu_ms_per_submission} ms/submission)`);
        }
      }
      const summary = Object.fromEntries(variants.map((v) => {
        const rs = runs[v.name];
        return [v.name, {
          label: v.label,
          accepted_per_s: round(median(rs.map((r) => r.accepted_per_s)), 1),
          p50_ms: round(median(rs.map((r) => r.latency_ms.p50)), 1),
          p95_ms: round(median(rs.map((r) => r.latency_ms.p95)), 1),
          api_cpu_ms_per_submission: round(median(rs.map((r) => r.api_cpu_ms_per_submission)), 2),
          client_cpu_ms_per_submission: round(median(rs.map((r) => r.client_cpu_ms_per_submission)), 2),
          runs: rs,
        }];
      }));
      const old = summary.baseline ?? summary.ffprobe;
      const ratios = {
        against: summary.baseline ? 'baseline' : 'ffprobe',
        accepted_per_s: round(summary.header.accepted_per_s / old.accepted_per_s, 2),
        p95: round(summary.header.p95_ms / old.p95_ms, 3),
        api_cpu_per_submission: round(summary.header.api_cpu_ms_per_submission / old.api_cpu_ms_per_submission, 3),
      };
      console.log(`  throughput ratio header / ${ratios.against}: ${ratios.accepted_per_s} × accepted/s, ${ratios.p95} × p95, ${ratios.api_cpu_per_submission} × API CPU per submission`);
      return { submissions: n, slow_path_submissions: slowN, concurrency, rounds, variants: summary, ratios };
    })();

    // --- 2. RSS with many SSE streams open -------------------------------------------------------
    const sse = !parts.has('sse') ? null : await withApi(space, 'api-sse', {}, async (api) => {
      const jobIds: string[] = [];
      for (let i = 0; i < 10; i++) {
        const { status, body } = await submitBytes(api.baseUrl!, clip, 'goforward.wav', submitRoute);
        if (status !== 202) throw new Error(`submission answered ${status}: ${JSON.stringify(body)}`);
        jobIds.push(String(body.job_id));
      }
      // Warm the stream route once, then let the process settle before the baseline.
      const probe = holdStream(api.baseUrl!, jobIds[0]);
      await probe.first;
      probe.close();
      await sleep(2000);
      const load = await waitForQuiet();
      const baseline = await idleRss(api);
      const hwmReset = api.resetPeakRss();
      const sampler = new RssSampler(api);
      const cpu0 = api.cpuSeconds();
      const t0 = performance.now();
      const open: ReturnType<typeof holdStream>[] = [];
      // Opened in waves of 100 so the listen backlog never overflows; each wave waits for its first events.
      for (let i = 0; i < streams; i += 100) {
        const wave = Array.from({ length: Math.min(100, streams - i) }, (_, k) => holdStream(api.baseUrl!, jobIds[(i + k) % jobIds.length]));
        open.push(...wave);
        await Promise.all(wave.map((s) => s.first));
      }
      const openedIn = (performance.now() - t0) / 1000;
      const holdFrom = sampler.samples[sampler.samples.length - 1].t;
      const cpuHold0 = api.cpuSeconds();
      await sleep(10_000);
      const cpuHold = api.cpuSeconds() - cpuHold0;
      const held = sampler.samples.filter((s) => s.t >= holdFrom + 5).map((s) => s.rss);
      const steady = median(held);
      const peak = sampler.max();
      const hwm = api.peakRss();
      for (const s of open) s.close();
      await sleep(5000);
      sampler.stop();
      const after = await idleRss(api);
      const result = {
        streams,
        jobs: jobIds.length,
        opened_in_s: round(openedIn, 2),
        baseline_rss_mib: mib(baseline),
        steady_rss_mib: mib(steady),
        peak_rss_mib: mib(peak),
        vmhwm_mib: hwmReset ? mib(hwm) : null,
        steady_delta_mib: mib(steady - baseline),
        peak_delta_mib: mib(peak - baseline),
        per_stream_kib: round((steady - baseline) / streams / 1024, 1),
        rss_after_close_mib: mib(after),
        api_cpu_s_opening: round(cpuHold0 - cpu0, 2),
        api_cpu_percent_holding: round((cpuHold / 10) * 100, 1),
        load_average_at_start: load.load_average,
      };
      console.log(`  SSE: ${streams} streams, RSS +${result.steady_delta_mib} MiB steady, +${result.peak_delta_mib} MiB peak`);
      return result;
    });

    // --- 3. RSS while a 1 GiB file is uploaded ----------------------------------------------------
    const upload = !parts.has('upload') ? null : await withApi(space, 'api-upload', { MAX_FILE_SIZE: String(Math.max(2 ** 31, uploadBytes * 2)) }, async (api) => {
      const load = await waitForQuiet();
      await sleep(2000);
      const baseline = await idleRss(api);
      const hwmReset = api.resetPeakRss();
      const clientRss0 = process.memoryUsage().rss;
      let clientPeak = clientRss0;
      const clientTimer = setInterval(() => (clientPeak = Math.max(clientPeak, process.memoryUsage().rss)), 100);
      const sampler = new RssSampler(api);
      const answer = await streamUpload(api.baseUrl!, uploadBytes);
      sampler.stop();
      clearInterval(clientTimer);
      if (answer.status !== 202) throw new Error(`the ${uploadBytes}-byte upload answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      const peak = sampler.max();
      const hwm = api.peakRss();
      const result = {
        bytes: uploadBytes,
        status: answer.status,
        sent_s: round(answer.sent_s, 2),
        answered_s: round(answer.answered_s, 2),
        upload_mib_per_s: round(uploadBytes / 2 ** 20 / answer.sent_s, 1),
        baseline_rss_mib: mib(baseline),
        peak_rss_mib: mib(peak),
        peak_delta_mib: mib(peak - baseline),
        vmhwm_delta_mib: hwmReset ? mib(hwm - baseline) : null,
        samples: sampler.samples.length,
        client_peak_rss_delta_mib: mib(clientPeak - clientRss0),
        load_average_at_start: load.load_average,
      };
      console.log(`  upload: ${mib(uploadBytes)} MiB in ${result.sent_s} s, RSS peak +${result.peak_delta_mib} MiB`);
      return result;
    });

    writeResult({
      benchmark: 'ingest',
      started_at: startedAt,
      finished_at: new Date().toISOString(),
      machine,
      method:
        'API process only (node dist/src/main.js, APP_ROLE=api; no worker, so jobs stay queued), a fresh process per part, its own queue prefix, ' +
        `queues deleted afterwards. Throughput: ${n} multipart submissions of goforward.wav (89 KB) to /transcribe/pocketsphinx (${slowN} for the ffprobe paths), ${concurrency} in flight ` +
        'over as many keep-alive connections, the body encoded once (after 32 warm-up submissions); accepted (202) / wall time; each submission is streamed to disk, ' +
        'probed (header or ffprobe), stored, written to Postgres and enqueued; CPU per submission of the API process (/proc/<pid>/stat) and of the client (process.cpuUsage). ' +
        `SSE: ${streams} streams (GET /stream/:job_id) on 10 queued jobs opened in waves of 100, held 10 s; RSS = VmRSS of the API process sampled every 100 ms; ` +
        'delta against the idle median just before; steady = median of the last 5 s held. Upload: one WAV (44-byte header + low-level noise) generated on the fly ' +
        'and sent as a streaming multipart body (http.request, Content-Length known, backpressure), peak VmRSS (100 ms samples) minus the idle baseline; ' +
        'VmHWM reset via /proc/<pid>/clear_refs before each part as a cross-check.',
      config: { parts: [...parts], submissions: n, slow_path_submissions: slowN, concurrency, rounds, baseline: baselineMain, sse_streams: streams, upload_bytes: uploadBytes, clip: path.basename(clipPath) },
      measurements: { throughput, sse, upload },
      headline: [
        ...(throughput
          ? [
              ...Object.values(throughput.variants).map((v) => ({
                metric: `accepted submissions, ${v.label}`,
                value: v.accepted_per_s,
                unit: '/s',
                note: `median of ${throughput.rounds}; ${v.runs[0].submissions} submissions, ${concurrency} in flight, p50 ${v.p50_ms} ms, p95 ${v.p95_ms} ms; API CPU ${v.api_cpu_ms_per_submission} ms/submission, client ${v.client_cpu_ms_per_submission} ms; load average at start ${v.runs[0].load_average_at_start[0]}`,
              })),
              {
                metric: `ratio header / ${throughput.ratios.against}, accepted submissions`,
                value: throughput.ratios.accepted_per_s,
                unit: '×',
                note: `same run; p95 ${throughput.ratios.p95} ×, API CPU per submission ${throughput.ratios.api_cpu_per_submission} ×`,
              },
            ]
          : []),
        ...(sse ? [{ metric: `RSS growth, ${streams} SSE streams`, value: sse.steady_delta_mib, unit: 'MiB', note: `peak +${sse.peak_delta_mib} MiB (${sse.per_stream_kib} KiB/stream) over ${sse.baseline_rss_mib} MiB; API CPU ${sse.api_cpu_percent_holding} % while held; load average at start ${sse.load_average_at_start[0]}` }] : []),
        ...(upload ? [{ metric: `RSS growth, ${mib(uploadBytes)} MiB upload`, value: upload.peak_delta_mib, unit: 'MiB', note: `peak over ${upload.baseline_rss_mib} MiB idle; ${upload.upload_mib_per_s} MiB/s; answered 202 after ${upload.answered_s} s; load average at start ${upload.load_average_at_start[0]}` }] : []),
      ],
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

runBench(main);
