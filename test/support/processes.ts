/**
 * Real processes for fault tests: the gateway compiled once into a private directory and run as
 * separate `node dist/src/main.js` processes (APP_ROLE=api / worker), next to a private Redis
 * (AOF, fsync on every write) and a private PostgreSQL cluster that the test may kill and restart
 * without touching the shared services other suites use.
 *
 * Everything a harness starts is recorded in `<root>/processes.json`; a small watchdog process
 * reads it and kills what is left if the test process itself dies (Jest killed, a crash, or
 * Jest's --forceExit before afterAll finished); `cleanup()` (afterAll) does it on the normal path.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

/** The few parts of node-postgres used here (the package ships no type declarations). */
interface PgClient {
  on(event: 'error', listener: (err: Error) => void): void;
  connect(): Promise<void>;
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
  end(): Promise<void>;
}
const pg = createRequire(import.meta.url)('pg') as { Client: new (config: { connectionString: string }) => PgClient };

/** A client whose connection may die under it (the tests restart the server): errors reach the awaiting call, never the process. */
function pgClient(url: string): PgClient {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  return client;
}

/** The project root (Jest's rootDir: every suite runs with it as the working directory). */
export const PROJECT_ROOT = process.cwd();

/** A free TCP port on 127.0.0.1 (the kernel's choice, released again at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Thrown by a waitFor probe to stop waiting at once (any other error only means "not yet"). */
export class GiveUp extends Error {}

/**
 * Polls `probe` every `intervalMs` until it returns a value other than undefined/false/null.
 * Errors the probe throws count as "not yet" (a service may be restarting), except GiveUp.
 * @returns that value.
 * @throws GiveUp from the probe; Error naming `what` (and the probe's last error) after `timeoutMs`.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs: number, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** Sends PING over a raw socket; true on `+PONG` (false on `-LOADING` while the AOF is replayed). */
function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

/** Resolves when the child has exited (at once when it already has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Runs a command as the postgres user when this process is root (PostgreSQL refuses to run as root). */
function asPostgres(command: string, args: string[], options: { timeout?: number } = {}): string {
  const [cmd, argv] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeout ?? 120_000 });
}

/** Debian's newest PostgreSQL binaries directory (as scripts/lib/bootstrap.sh picks it). */
function pgBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(a) - Number(b)).pop();
  if (!newest) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql (install postgresql)');
  return path.join(base, newest, 'bin');
}

/** A private Redis with AOF and `appendfsync always`: every acknowledged write is on disk. */
export class RedisServer {
  private child: ChildProcess | undefined;

  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly registry: ProcessRegistry,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts redis-server on the same port and directory (replaying its AOF) and waits for PONG. */
  async start(): Promise<void> {
    const log = openSync(path.join(this.dir, 'redis.log'), 'a');
    this.child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--dir', this.dir, '--daemonize', 'no', '--logfile', ''],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    this.registry.add(this.child.pid!);
    const child = this.child;
    await waitFor(`Redis on :${this.port}`, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${this.log().slice(-2000)}`);
      return redisPing(this.port);
    }, 30_000, 100);
  }

  /** Kills redis-server (SIGKILL: no shutdown save; the AOF already holds every write) and waits for its exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    await exited(child);
    this.registry.remove(child.pid!);
    this.child = undefined;
  }

  /** Kill, then start again on the same port and directory. @returns milliseconds until it answered PONG again. */
  async restart(signal: NodeJS.Signals = 'SIGKILL'): Promise<number> {
    const started = Date.now();
    await this.kill(signal);
    await this.start();
    return Date.now() - started;
  }

  /** One command on a short-lived connection (e.g. `LLEN prefix:transcription:wait`). */
  async command(name: string, ...args: (string | number)[]): Promise<unknown> {
    const client = new Redis({ host: '127.0.0.1', port: this.port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await client.call(name, ...args);
    } finally {
      client.disconnect();
    }
  }

  log(): string {
    try {
      return readFileSync(path.join(this.dir, 'redis.log'), 'utf8');
    } catch {
      return '';
    }
  }
}

/** A private PostgreSQL cluster (trust auth, superuser `postgres`, database `gateway`). */
export class PostgresServer {
  private readonly bin = pgBin();

  constructor(
    readonly port: number,
    /** Parent of the data directory, owned by postgres. */
    readonly root: string,
    private readonly registry: ProcessRegistry,
  ) {}

  get dataDir(): string {
    return path.join(this.root, 'data');
  }

  /** The gateway's DATABASE_URL. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/gateway`;
  }

  /** initdb (first time), start, create database `gateway`. */
  async init(): Promise<void> {
    execFileSync('chmod', ['755', this.root]);
    if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', this.root]);
    asPostgres(path.join(this.bin, 'initdb'), ['-D', this.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    await this.start();
    const client = pgClient(`postgres://postgres@127.0.0.1:${this.port}/postgres`);
    await client.connect();
    try {
      await client.query('CREATE DATABASE gateway');
    } finally {
      await client.end();
    }
  }

  /** pg_ctl start (waits until it accepts connections). @returns milliseconds it took. */
  async start(): Promise<number> {
    const started = Date.now();
    asPostgres(path.join(this.bin, 'pg_ctl'), [
      '-D', this.dataDir, '-w', '-t', '60', '-l', path.join(this.root, 'server.log'),
      '-o', `-c listen_addresses=127.0.0.1 -p ${this.port} -c unix_socket_directories=/tmp -c max_connections=200`,
      'start',
    ]);
    this.registry.addPostgres(this.dataDir);
    await waitFor(`PostgreSQL on :${this.port}`, async () => {
      const client = pgClient(`postgres://postgres@127.0.0.1:${this.port}/postgres`);
      await client.connect();
      await client.end();
      return true;
    }, 30_000, 100);
    return Date.now() - started;
  }

  /** pg_ctl stop: `immediate` is a crash (no checkpoint; WAL replay at the next start), `fast` a clean stop. */
  stop(mode: 'immediate' | 'fast' = 'immediate'): void {
    try {
      asPostgres(path.join(this.bin, 'pg_ctl'), ['-D', this.dataDir, '-m', mode, '-w', 'stop']);
    } catch (err) {
      if (!/Is server running|No such file/i.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
    }
    this.registry.removePostgres(this.dataDir);
  }

  /** stop (immediate by default) then start. @returns milliseconds until it accepted connections again. */
  async restart(mode: 'immediate' | 'fast' = 'immediate'): Promise<number> {
    const started = Date.now();
    this.stop(mode);
    await this.start();
    return Date.now() - started;
  }

  /** One query on a short-lived connection to `gateway`. */
  async query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = pgClient(this.url);
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  }

  log(): string {
    try {
      return readFileSync(path.join(this.root, 'server.log'), 'utf8');
    } catch {
      return '';
    }
  }
}

/** One gateway process (`node dist/src/main.js`). */
export class GatewayProcess {
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly name: string,
    readonly role: 'api' | 'worker' | 'all',
    private readonly child: ChildProcess,
    readonly logFile: string,
    /** http://127.0.0.1:PORT for api/all; '' for a worker. */
    readonly url: string,
    registry: ProcessRegistry,
  ) {
    child.once('exit', (code, signal) => {
      this.exitInfo = { code, signal };
      registry.remove(child.pid!);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** transcript_jobs.worker_id of jobs this process runs (src/jobs/worker-id.ts: `host:pid`). */
  get workerId(): string {
    return `${os.hostname()}:${this.pid}`;
  }

  /** undefined while running; how it ended otherwise. */
  get exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exitInfo;
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Sends `signal` and waits for the exit (SIGTERM: the graceful shutdown path; SIGKILL: a crash). */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 30_000): Promise<void> {
    if (this.exitInfo) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await exited(this.child);
    clearTimeout(timer);
  }
}

/**
 * Pids and PostgreSQL clusters to clean up, kept in a JSON file that the watchdog reads when the
 * test process disappears without cleaning up.
 */
class ProcessRegistry {
  private readonly pids = new Set<number>();
  private readonly clusters = new Set<string>();

  constructor(private readonly file: string) {
    this.write();
  }

  add(pid: number): void {
    this.pids.add(pid);
    this.write();
  }

  remove(pid: number): void {
    this.pids.delete(pid);
    this.write();
  }

  addPostgres(dataDir: string): void {
    this.clusters.add(dataDir);
    this.write();
  }

  removePostgres(dataDir: string): void {
    this.clusters.delete(dataDir);
    this.write();
  }

  /** Synchronous: usable from a process 'exit' hook. SIGKILL every pid, SIGQUIT (immediate shutdown) every postmaster. */
  killAllSync(): void {
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of this.clusters) {
      try {
        const pid = Number(readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
        if (pid > 0) process.kill(pid, 'SIGQUIT');
      } catch {
        // not running
      }
    }
  }

  private write(): void {
    writeFileSync(this.file, JSON.stringify({ pids: [...this.pids], clusters: [...this.clusters] }));
  }
}

/**
 * Runs detached: polls the test process; once it is gone, kills what the registry lists, stops
 * the clusters (SIGQUIT = immediate shutdown) and removes the harness directories.
 */
const WATCHDOG = `
const fs = require('fs');
const [parent, file, ...dirs] = process.argv.slice(1);
const timer = setInterval(() => {
  try { process.kill(Number(parent), 0); return; } catch {}
  clearInterval(timer);
  try {
    const { pids, clusters } = JSON.parse(fs.readFileSync(file, 'utf8'));
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch {} }
    for (const dir of clusters) {
      try { const pid = Number(fs.readFileSync(dir + '/postmaster.pid', 'utf8').split('\\n')[0]); if (pid > 0) process.kill(pid, 'SIGQUIT'); } catch {}
    }
  } catch {}
  setTimeout(() => { for (const d of dirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch {} } process.exit(0); }, 3000);
}, 1000);
`;

/** What a gateway process gets besides the harness's shared settings. */
export interface GatewayOptions {
  role: 'api' | 'worker' | 'all';
  /** Names the log file (`<root>/logs/<name>.log`). */
  name: string;
  /** Extra environment (engine settings, CHUNKING_THRESHOLD, WORKER_CONCURRENCY…); wins over the shared settings. */
  env?: Record<string, string>;
  /** Milliseconds to wait for readiness (api: GET /health 200; worker: its "worker started" log line). */
  readyTimeoutMs?: number;
}

/**
 * One fault-test environment: a private build of the gateway, private Redis and PostgreSQL, the
 * shared settings every gateway process of the test gets (same Redis, database, queue prefix,
 * storage and temp dirs), and cleanup of all of it.
 */
export class FaultHarness {
  redis!: RedisServer;
  postgres!: PostgresServer;
  readonly gateways: GatewayProcess[] = [];
  /** Settings every gateway process of this harness shares. */
  readonly shared: Record<string, string>;
  private readonly registry: ProcessRegistry;
  private watchdog: ChildProcess | undefined;
  private readonly onExit = () => this.registry.killAllSync();
  private cleaned = false;

  private constructor(
    /** Private directory: dist/, logs/, storage/, tmp/, redis/. */
    readonly root: string,
    /** Parent of the PostgreSQL data directory (a separate directory: it must belong to postgres). */
    readonly pgRoot: string,
  ) {
    this.registry = new ProcessRegistry(path.join(root, 'processes.json'));
    this.shared = {
      QUEUE_PREFIX: `faults-${path.basename(root).slice(-6)}`,
      DATA_DIR: path.join(root, 'storage'),
      TEMP_DIR: path.join(root, 'tmp'),
      HOST: '127.0.0.1',
      JOB_BACKOFF_MS: '200',
      ENGINE_HEALTH_INTERVAL: '5',
      // Bursts come from one client address: the per-client limits would answer 429.
      RATE_LIMIT_PER_MINUTE: '0',
      RATE_LIMIT_SUBMIT_PER_MINUTE: '0',
    };
  }

  /**
   * Creates the directories, compiles the gateway (tsc → `<root>/dist`, runnable with
   * `node <root>/dist/src/main.js`), starts the watchdog and, unless told otherwise, Redis and
   * PostgreSQL (migrated).
   */
  static async create(label: string, options: { services?: boolean } = {}): Promise<FaultHarness> {
    const root = mkdtempSync(path.join(os.tmpdir(), `gw-faults-${label}-`));
    const pgRoot = mkdtempSync(path.join('/tmp', `gw-faults-${label}-pg-`));
    const harness = new FaultHarness(root, pgRoot);
    // Under Jest this is a per-file copy of `process` whose 'exit' never fires: the watchdog covers that case.
    process.on('exit', harness.onExit);
    harness.watchdog = spawn(process.execPath, ['-e', WATCHDOG, String(process.pid), path.join(root, 'processes.json'), root, pgRoot], {
      detached: true,
      stdio: 'ignore',
    });
    harness.watchdog.unref();
    try {
      for (const d of ['logs', 'storage', 'tmp', 'redis']) mkdirSync(path.join(root, d));
      harness.build();
      if (options.services !== false) await harness.startServices();
    } catch (err) {
      await harness.cleanup();
      throw err;
    }
    return harness;
  }

  /**
   * tsc into `<root>/dist` with links to the project's node_modules, proto/ and public/, and a
   * package.json that makes the output ESM. Type errors elsewhere in a tree being edited do not
   * stop the emit; a missing main.js does.
   */
  private build(): void {
    const outDir = path.join(this.root, 'dist');
    try {
      execFileSync(process.execPath, [path.join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(PROJECT_ROOT, 'tsconfig.build.json'), '--outDir', outDir], {
        cwd: PROJECT_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      });
    } catch (err) {
      if (!existsSync(path.join(outDir, 'src', 'main.js'))) throw new Error(`tsc emitted no dist/src/main.js: ${String((err as { stdout?: string }).stdout ?? err)}`);
    }
    for (const name of ['node_modules', 'proto', 'public']) {
      if (existsSync(path.join(PROJECT_ROOT, name))) symlinkSync(path.join(PROJECT_ROOT, name), path.join(this.root, name));
    }
    writeFileSync(path.join(this.root, 'package.json'), JSON.stringify({ type: 'module' }));
  }

  /** Starts the private Redis and PostgreSQL and runs the migrations (TypeORM CLI on the compiled data source). */
  async startServices(): Promise<void> {
    this.redis = new RedisServer(await freePort(), path.join(this.root, 'redis'), this.registry);
    await this.redis.start();
    this.postgres = new PostgresServer(await freePort(), this.pgRoot, this.registry);
    await this.postgres.init();
    execFileSync(process.execPath, [path.join(this.root, 'node_modules', 'typeorm', 'cli.js'), 'migration:run', '-d', path.join(this.root, 'dist', 'src', 'database', 'data-source.js')], {
      cwd: this.root,
      env: { ...this.baseEnv(), DATABASE_URL: this.postgres.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.shared.DATABASE_URL = this.postgres.url;
    this.shared.REDIS_URL = this.redis.url;
  }

  /** PATH and locale only: nothing of the shared test services' environment reaches the gateway processes. */
  private baseEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const key of ['PATH', 'HOME', 'LANG', 'TZ']) if (process.env[key]) env[key] = process.env[key]!;
    return env;
  }

  /** Spawns `node <root>/dist/src/main.js` and waits until it is ready. @throws when it exits or times out first. */
  async startGateway(options: GatewayOptions): Promise<GatewayProcess> {
    const port = options.role === 'worker' ? 0 : await freePort();
    const logFile = path.join(this.root, 'logs', `${options.name}.log`);
    const log = openSync(logFile, 'a');
    const child = spawn(process.execPath, [path.join(this.root, 'dist', 'src', 'main.js')], {
      cwd: this.root,
      env: {
        ...this.baseEnv(),
        LOG_LEVEL: 'info',
        ...this.shared,
        APP_ROLE: options.role,
        PORT: String(port),
        ...options.env,
      },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.registry.add(child.pid!);
    const gateway = new GatewayProcess(options.name, options.role, child, logFile, port ? `http://127.0.0.1:${port}` : '', this.registry);
    this.gateways.push(gateway);
    await waitFor(`${options.name} (${options.role}) to be ready`, async () => {
      if (gateway.exit) throw new Error(`${options.name} exited (${JSON.stringify(gateway.exit)}): ${gateway.log().slice(-3000)}`);
      if (options.role === 'worker') return gateway.log().includes('worker started');
      const res = await fetch(`${gateway.url}/health`);
      return res.status === 200;
    }, options.readyTimeoutMs ?? 60_000, 200).catch((err: unknown) => {
      // A process that exited is an error in itself; give its log to the failure message.
      throw new Error(`${String(err)}\n--- ${options.name} log ---\n${gateway.log().slice(-4000)}`);
    });
    return gateway;
  }

  /**
   * Stops everything this harness started (gateways SIGKILL, Redis SIGKILL, PostgreSQL immediate)
   * and removes its directories (kept, for reading the logs, when FAULTS_KEEP=1). Safe to call
   * twice and after a failed setup.
   */
  async cleanup(options: { keep?: boolean } = { keep: process.env.FAULTS_KEEP === '1' }): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    await Promise.all(this.gateways.map((g) => g.kill('SIGKILL').catch(() => undefined)));
    await this.redis?.kill('SIGKILL').catch(() => undefined);
    try {
      this.postgres?.stop('immediate');
    } catch {
      // pg_ctl failed: killAllSync sends the postmaster SIGQUIT (immediate shutdown) instead
    }
    this.registry.killAllSync();
    process.removeListener('exit', this.onExit);
    if (this.watchdog?.pid) {
      try {
        process.kill(this.watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (!options.keep) {
      rmSync(this.root, { recursive: true, force: true });
      rmSync(this.pgRoot, { recursive: true, force: true });
    }
  }
}

/** Runs `task` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i], i);
    }
  });
  await Promise.all(runners);
  return results;
}

/**
 * Cuts `seconds` of `source` (from `startSec`) into a 16 kHz mono s16le WAV with ffmpeg.
 * @returns the new file's path.
 */
export function cutClip(source: string, out: string, seconds: number, startSec = 0): string {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-ss', String(startSec), '-t', String(seconds), '-i', source, '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', '-fflags', '+bitexact', out]);
  return out;
}
