import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { envNumber } from './env.js';

/** The machine a result was measured on; stored in every result file. */
export interface MachineInfo {
  os: string;
  arch: string;
  /** Logical CPUs (os.cpus().length). */
  cpus: number;
  cpu_model: string;
  /** GiB. */
  memory_gib: number;
  node: string;
  /** First line of `ffmpeg -version`. */
  ffmpeg: string | null;
  /** Debian package version of `pocketsphinx`. */
  pocketsphinx: string | null;
  /** 1, 5 and 15 minute load averages when the benchmark started measuring. */
  load_average_at_start: [number, number, number];
  /** Seconds spent waiting for the 1-minute load average to fall below `max_load` before starting. */
  waited_for_load_s: number;
  /** The load ceiling waited for (BENCH_MAX_LOAD). */
  max_load: number;
  /** Set when the load was still above `max_load` when the wait ended: the numbers share the CPUs with other work. */
  load_note: string | null;
}

function tryRun(command: string, args: string[]): string | null {
  try {
    return execFileSync(command, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

const loadavg = () => os.loadavg().map((x) => Math.round(x * 100) / 100) as [number, number, number];

/** The load average a measurement started at, and how long it waited for it. */
export interface LoadAtStart {
  load_average: [number, number, number];
  waited_s: number;
  /** True when the 1-minute load was still ≥ BENCH_MAX_LOAD when the wait ended. */
  busy: boolean;
}

/**
 * Waits (up to BENCH_LOAD_WAIT_S seconds, default 180) until the 1-minute load average is below
 * BENCH_MAX_LOAD (default 1.5): timings on a machine busy with other work say little.
 */
export async function waitForQuiet(): Promise<LoadAtStart> {
  const maxLoad = envNumber('BENCH_MAX_LOAD', 1.5);
  const maxWait = envNumber('BENCH_LOAD_WAIT_S', 180);
  const started = Date.now();
  let announced = false;
  while (os.loadavg()[0] >= maxLoad && (Date.now() - started) / 1000 < maxWait) {
    if (!announced) {
      console.log(`  load average ${loadavg().join(', ')} ≥ ${maxLoad}: waiting up to ${maxWait} s for the machine to settle`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, 5000));
  }
  const load = loadavg();
  return { load_average: load, waited_s: Math.round((Date.now() - started) / 1000), busy: load[0] >= maxLoad };
}

/** Waits for a quiet machine (waitForQuiet), then describes it with the load average at that moment. */
export async function settleAndDescribe(): Promise<MachineInfo> {
  const maxLoad = envNumber('BENCH_MAX_LOAD', 1.5);
  const { load_average: load, waited_s } = await waitForQuiet();
  const cpus = os.cpus();
  return {
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    cpus: cpus.length,
    cpu_model: cpus[0]?.model.trim() ?? 'unknown',
    memory_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    ffmpeg: tryRun('ffmpeg', ['-version'])?.split('\n')[0] ?? null,
    pocketsphinx: tryRun('dpkg-query', ['-W', '-f=${Version}', 'pocketsphinx']),
    load_average_at_start: load,
    waited_for_load_s: waited_s,
    max_load: maxLoad,
    load_note: load[0] >= maxLoad ? `load average ${load[0]} at start (≥ ${maxLoad}): the machine was busy with other work` : null,
  };
}
