import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { BENCH_DATABASE_URL, BENCH_REDIS_URL, GATEWAY_MAIN } from './env.js';

/** One benchmark run's share of Postgres, Redis and the disk: its own queue prefix, storage and temp dirs. */
export interface BenchSpace {
  /** BullMQ key prefix; no other run (or test suite) sees these jobs. */
  queuePrefix: string;
  dataDir: string;
  tempDir: string;
  /** Where each gateway process writes its log (`<name>.log`). */
  logDir: string;
}

/** Creates the directories of a run's space under `scratch`. */
export function benchSpace(scratch: string, name: string): BenchSpace {
  const space = {
    queuePrefix: `bench-${name}-${Math.random().toString(36).slice(2, 8)}`,
    dataDir: path.join(scratch, 'storage'),
    tempDir: path.join(scratch, 'tmp'),
    logDir: path.join(scratch, 'logs'),
  };
  for (const dir of [space.dataDir, space.tempDir, space.logDir]) mkdirSync(dir, { recursive: true });
  return space;
}

/** A free TCP port on 127.0.0.1 (bound and released; the gateway binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Reads one `kB` field of /proc/<pid>/status (VmRSS: resident set now; VmHWM: its peak). @returns bytes. */
function procStatusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`${field} missing from /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/**
 * A real gateway process, `node dist/src/main.js`, with APP_ROLE `api` or `worker`, against the
 * bench Postgres and Redis. Its log (pino JSON lines, LOG_LEVEL=info) goes to a file; readiness
 * is its startup line ("listening on" for the API, "worker started" for a worker).
 */
export class GatewayProcess {
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly logFile: string,
    /** `http://127.0.0.1:<port>` for the API role. */
    readonly baseUrl: string | null,
  ) {
    child.on('exit', (code, signal) => (this.exited = { code, signal }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /**
   * Starts a process and resolves once it is ready.
   * @param env extra variables (e.g. WORKER_CONCURRENCY, MAX_FILE_SIZE); they win over the defaults.
   * @param main the gateway's compiled entry point: this build's by default, or another build's
   *   (e.g. the previous commit's, to measure before and after in one run).
   * @throws when it exits or is not ready within 60 s (the message carries its log's tail).
   */
  static async start(name: string, role: 'api' | 'worker', space: BenchSpace, env: Record<string, string> = {}, main = GATEWAY_MAIN): Promise<GatewayProcess> {
    const port = role === 'api' ? await freePort() : 0;
    const logFile = path.join(space.logDir, `${name}.log`);
    writeFileSync(logFile, '');
    const fd = openSync(logFile, 'a');
    const child = spawn(process.execPath, [main], {
      stdio: ['ignore', fd, fd],
      env: {
        ...process.env,
        APP_ROLE: role,
        DATABASE_URL: BENCH_DATABASE_URL,
        REDIS_URL: BENCH_REDIS_URL,
        QUEUE_PREFIX: space.queuePrefix,
        DATA_DIR: space.dataDir,
        TEMP_DIR: space.tempDir,
        HOST: '127.0.0.1',
        PORT: String(port),
        METRICS_PORT: '0',
        // The readiness line is an info line; the log goes to a file, not the terminal.
        LOG_LEVEL: 'info',
        // Authentication and rate limits off: the benchmarks measure the pipeline, not the limiter.
        API_KEYS: '',
        ASR_TOKEN: '',
        RATE_LIMIT_PER_MINUTE: '0',
        RATE_LIMIT_SUBMIT_PER_MINUTE: '0',
        ...env,
      },
    });
    closeSync(fd);
    const proc = new GatewayProcess(name, child, logFile, role === 'api' ? `http://127.0.0.1:${port}` : null);
    const ready = role === 'api' ? /listening on/ : /worker started/;
    const deadline = Date.now() + 60_000;
    while (!ready.test(readFileSync(logFile, 'utf8'))) {
      if (proc.exited) throw new Error(`${name} exited (${proc.exited.code ?? proc.exited.signal}) before it was ready:\n${proc.logTail()}`);
      if (Date.now() > deadline) {
        await proc.stop();
        throw new Error(`${name} was not ready within 60 s:\n${proc.logTail()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return proc;
  }

  /** The last `lines` lines of the process's log. */
  logTail(lines = 20): string {
    return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** Resident set size now, bytes (/proc/<pid>/status VmRSS). */
  rss(): number {
    return procStatusBytes(this.pid, 'VmRSS');
  }

  /** Peak resident set size since start or the last resetPeakRss(), bytes (VmHWM). */
  peakRss(): number {
    return procStatusBytes(this.pid, 'VmHWM');
  }

  /**
   * Resets VmHWM to the current RSS (writing 5 to /proc/<pid>/clear_refs, Linux ≥ 4.0).
   * @returns false where that is not allowed (then peakRss() includes the boot's peak).
   */
  resetPeakRss(): boolean {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      return true;
    } catch {
      return false;
    }
  }

  /** CPU time the process has used so far (user + system), seconds (/proc/<pid>/stat, clock ticks of 1/100 s). */
  cpuSeconds(): number {
    // Fields after the command name (which is in parentheses and may contain spaces): utime is the 12th, stime the 13th.
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** SIGTERM (graceful shutdown), SIGKILL after 15 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(timer);
  }
}

/** Removes every Redis key of a run's queue prefix (its queues, jobs and counters): BullMQ's obliterate for all queues at once. */
export async function removeQueues(queuePrefix: string): Promise<number> {
  const redis = new Redis(BENCH_REDIS_URL, { maxRetriesPerRequest: 3 });
  let removed = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${queuePrefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) removed += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return removed;
}
