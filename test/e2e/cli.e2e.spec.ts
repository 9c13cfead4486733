import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ConnectionError, GatewayClient, type JobStatusEvent } from '../../src/cli/client.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { fixture, testConfig } from '../support/env.js';
import { FlakyEngine } from '../support/flaky-engine.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { references, wordErrorRate } from '../support/wer.js';

/**
 * The `transcribe` CLI as a real process: compiled by tsc (the same compiler options as the
 * build) into a scratch directory, run with node against a real in-process gateway
 * (pocketsphinx), and against a small recording HTTP server where the test must see what the
 * CLI sends (API key header, audio_url field, reconnects).
 */

const ROOT = process.cwd();
const out = mkdtempSync(path.join(os.tmpdir(), 'gw-test-cli-'));
const MAIN = path.join(out, 'src', 'cli', 'main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI; TRANSCRIBE_* from the test's own environment never leak in. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TRANSCRIBE_')));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: out, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** An HTTP server that records every request and answers with `handler`. */
async function recordingServer(handler: (req: Recorded, res: ServerResponse, index: number) => void): Promise<{ url: string; requests: Recorded[]; server: Server }> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(recorded);
      handler(recorded, res, requests.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

/** Cue texts of an SRT document, checking each cue's shape (index, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, text). */
function parseSrt(srt: string): { start: number; end: number; text: string }[] {
  const seconds = (t: string) => {
    const [h, m, s] = t.replace(',', '.').split(':').map(Number);
    return h * 3600 + m * 60 + s;
  };
  return srt
    .trim()
    .split(/\n{2,}/)
    .map((block, i) => {
      const lines = block.split('\n');
      expect(lines[0]).toBe(String(i + 1));
      const times = /^(\d{2}:\d{2}:\d{2},\d{3}) --> (\d{2}:\d{2}:\d{2},\d{3})$/.exec(lines[1]);
      expect(times).not.toBeNull();
      expect(lines.length).toBeGreaterThan(2);
      return { start: seconds(times![1]), end: seconds(times![2]), text: lines.slice(2).join(' ') };
    });
}

describe('transcribe CLI (compiled, as a process)', () => {
  let gw: TestGateway;
  const reference = references().get('goforward')!;

  beforeAll(async () => {
    // Only the CLI's own import graph: fast, and independent of the rest of src/ compiling.
    const tsconfig = path.join(out, 'tsconfig.json');
    writeFileSync(
      tsconfig,
      JSON.stringify({
        extends: path.join(ROOT, 'tsconfig.build.json'),
        compilerOptions: { outDir: out, rootDir: ROOT, sourceMap: false, typeRoots: [path.join(ROOT, 'node_modules', '@types')] },
        include: [],
        files: [path.join(ROOT, 'src', 'cli', 'main.ts')],
      }),
    );
    writeFileSync(path.join(out, 'package.json'), JSON.stringify({ type: 'module' }));
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig], { encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
    expect(readFileSync(MAIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    gw = await startGateway(testConfig());
  });
  afterAll(async () => gw?.close());

  it('transcribes a file to SRT on stdout, with progress lines on stderr', async () => {
    const run = await cli([fixture('goforward.wav'), '--url', gw.url, '--engine', 'pocketsphinx', '--format', 'srt']);
    expect(run.stderr).toMatch(/^job [0-9a-f-]{36} queued on pocketsphinx\n/);
    expect(run.code).toBe(0);
    // stderr is a pipe here: one line per stage, ending with completed.
    const lines = run.stderr.trim().split('\n').slice(1);
    expect(lines.every((l) => /^\[ {0,2}\d{1,3}%\] [a-z]+( \(chunk \d+ of \d+\))?$/.test(l))).toBe(true);
    expect(lines).toContain('[100%] completed');
    expect(lines.some((l) => l.includes('transcribing'))).toBe(true);
    const cues = parseSrt(run.stdout);
    expect(cues.length).toBeGreaterThan(0);
    expect(cues[0].start).toBeGreaterThanOrEqual(0);
    expect(cues.at(-1)!.end).toBeLessThanOrEqual(4);
    expect(wordErrorRate([{ reference, hypothesis: cues.map((c) => c.text).join(' ') }])).toBeLessThanOrEqual(0.5);
  });

  it('writes --output in the format its extension names; status and result read the job back', async () => {
    const target = path.join(out, 'goforward.vtt');
    const run = await cli([fixture('goforward.wav'), '-o', target], { TRANSCRIBE_URL: gw.url });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`wrote ${target}`);
    expect(readFileSync(target, 'utf8')).toMatch(/^WEBVTT\n\n/);
    const jobId = /^job ([0-9a-f-]{36})/.exec(run.stderr)![1];

    const status = await cli(['status', jobId, '--url', gw.url]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ job_id: jobId, status: 'completed', progress: 100, engine: 'pocketsphinx' });

    const result = await cli(['result', jobId, '--format', 'json', '--url', gw.url]);
    expect(result.code).toBe(0);
    const body = JSON.parse(result.stdout) as { job_id: string; text: string; segments: { words: { start: number }[] }[] };
    expect(body.job_id).toBe(jobId);
    expect(wordErrorRate([{ reference, hypothesis: body.text }])).toBeLessThanOrEqual(0.5);
    expect(body.segments[0].words.length).toBeGreaterThan(0);

    const text = await cli(['result', jobId, '--url', gw.url]);
    expect(text.code).toBe(0);
    expect(text.stdout.trim()).toBe(body.text.trim());
  });

  it('lists the engines as a table and as JSON', async () => {
    const table = await cli(['engines', '--url', gw.url]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ENGINE +AVAILABLE +DIARIZATION +MODELS +LANGUAGES +NAME$/);
    expect(table.stdout).toMatch(/^pocketsphinx\* +(yes|no) +no +en-us +en-US +CMU/m);
    const json = await cli(['engines', '--json', '--url', gw.url]);
    expect(JSON.parse(json.stdout)).toMatchObject({ default_engine: 'pocketsphinx', engines: { pocketsphinx: { engine: 'pocketsphinx', diarization: false } } });
  });

  it("exits 3 with the API's message when the gateway refuses", async () => {
    const id = randomUUID();
    const api = (await (await fetch(`${gw.url}/api/transcribe/jobs/status/${id}`)).json()) as { message: string };
    const unknown = await cli(['status', id, '--url', gw.url]);
    expect(unknown.code).toBe(3);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toBe(`transcribe: ${api.message} (HTTP 404 JOB_NOT_FOUND)\n`);

    const invalid = await cli([fixture('goforward.wav'), '--language', 'english', '--url', gw.url]);
    expect(invalid.code).toBe(3);
    expect(invalid.stderr).toMatch(/^transcribe: language must be a language code such as 'en' or 'en-US' \(HTTP 400 VALIDATION_FAILED\)\n$/);

    const notAudio = path.join(out, 'notes.wav');
    writeFileSync(notAudio, 'these are meeting notes, not audio\n'.repeat(20));
    const rejected = await cli([notAudio, '--url', gw.url]);
    expect(rejected.code).toBe(3);
    expect(rejected.stderr).toMatch(/^transcribe: .+ \(HTTP 41[56] AUDIO_[A-Z_]+\)\n$/);
  });

  it('names --api-key and TRANSCRIBE_API_KEY when a keyed gateway refuses the request', async () => {
    const key = `cli-key-${randomUUID()}`;
    const keyed = await startGateway(testConfig({ API_KEYS: key }));
    try {
      const missing = await cli(['engines', '--url', keyed.url]);
      expect(missing.code).toBe(3);
      expect(missing.stderr).toMatch(/^transcribe: .+; give the gateway's API key with --api-key KEY or the environment variable TRANSCRIBE_API_KEY \(HTTP 401 API_KEY_REQUIRED\)\n$/);
      const wrong = await cli(['engines', '--url', keyed.url, '--api-key', 'not-the-key']);
      expect(wrong.code).toBe(3);
      expect(wrong.stderr).toMatch(/--api-key or TRANSCRIBE_API_KEY is not one of the gateway's API_KEYS \(HTTP 403 API_KEY_INVALID\)\n$/);
      const fromEnv = await cli(['engines', '--url', keyed.url], { TRANSCRIBE_API_KEY: key });
      expect(fromEnv.code).toBe(0);
      expect(fromEnv.stdout).toMatch(/pocketsphinx/);
    } finally {
      await keyed.close();
    }
  });

  it('exits 1 with the engine error when the job fails', async () => {
    const flaky = new FlakyEngine(buildEngines({}).engines[0], 99, { code: 'ENGINE_REJECTED', retryable: false });
    const failing = await startGateway(testConfig(), [flaky]);
    try {
      const run = await cli([fixture('goforward.wav'), '--url', failing.url]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/\ntranscribe: job [0-9a-f-]{36} failed: injected failure 1 \(ENGINE_REJECTED\)\n$/);
    } finally {
      await failing.close();
    }
  });

  it('exits 4 when nothing answers and 2 for usage errors', async () => {
    const port = await closedPort();
    const down = await cli(['engines', '--url', `http://127.0.0.1:${port}`]);
    expect(down.code).toBe(4);
    expect(down.stderr).toBe(`transcribe: cannot connect to http://127.0.0.1:${port} (ECONNREFUSED)\n`);

    const missing = await cli([path.join(out, 'nope.wav'), '--url', gw.url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`transcribe: cannot read ${path.join(out, 'nope.wav')}: no such file\n`);

    const bad = await cli(['status', 'x', '--format', 'srt']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("transcribe: --format does not apply to 'status'\nRun 'transcribe --help' for usage.\n");

    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^transcribe: command-line client/);
  });

  it('sends the API key as a bearer token and a URL as audio_url; --no-wait prints the job', async () => {
    const jobId = randomUUID();
    const rec = await recordingServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      if (req.url.endsWith('/engines')) {
        res.end(JSON.stringify({ default_engine: 'riva', engines: { riva: { engine: 'riva', display_name: 'NVIDIA Riva', available: false, message: 'UNAVAILABLE: no connection', diarization: true, languages: ['en-US'], models: [] } } }));
      } else {
        res.statusCode = 202;
        res.end(JSON.stringify({ job_id: jobId, transcript_id: randomUUID(), engine: 'riva', status: 'queued', message: 'queued' }));
      }
    });
    try {
      const engines = await cli(['engines'], { TRANSCRIBE_URL: `${rec.url}/`, TRANSCRIBE_API_KEY: 'env-key' });
      expect(engines.code).toBe(0);
      expect(engines.stdout).toContain('riva: UNAVAILABLE: no connection');
      expect(rec.requests[0]).toMatchObject({ method: 'GET', url: '/api/transcribe/jobs/engines' });
      expect(rec.requests[0].headers.authorization).toBe('Bearer env-key');

      const submitted = await cli(['https://media.example.org/call.mp3', '--engine', 'riva', '--diarize', '--no-wait', '--api-key', 'flag-key', '--url', rec.url], { TRANSCRIBE_API_KEY: 'env-key' });
      expect(submitted.code).toBe(0);
      expect(JSON.parse(submitted.stdout)).toMatchObject({ job_id: jobId, status: 'queued' });
      const post = rec.requests[1];
      expect(post).toMatchObject({ method: 'POST', url: '/api/transcribe/jobs/transcribe' });
      expect(post.headers.authorization).toBe('Bearer flag-key');
      expect(post.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
      const field = (name: string) => new RegExp(`name="${name}"\\r\\n\\r\\n([^\\r]*)\\r\\n`).exec(post.body)?.[1];
      expect([field('audio_url'), field('engine'), field('enable_diarization')]).toEqual(['https://media.example.org/call.mp3', 'riva', 'true']);
      expect(post.body).not.toContain('name="file"');
    } finally {
      rec.server.close();
    }
  });

  it('reopens an event stream that drops before the end, and gives up after maxReconnects', async () => {
    const jobId = randomUUID();
    const event = (e: Partial<JobStatusEvent>) => `data: ${JSON.stringify({ job_id: jobId, engine: 'pocketsphinx', message: '', ...e })}\n\n`;
    const rec = await recordingServer((_req, res, index) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      if (index === 0) res.end(event({ status: 'processing', stage: 'transcribing', progress: 40, chunks_done: 2, chunks_total: 5 }));
      else res.end(`: resent state first\n\n${event({ status: 'processing', stage: 'transcribing', progress: 40 })}${event({ status: 'completed', stage: 'completed', progress: 100 })}`);
    });
    try {
      const seen: JobStatusEvent[] = [];
      const last = await new GatewayClient({ baseUrl: rec.url, reconnectDelayMs: 10 }).follow(jobId, (e) => seen.push(e));
      expect(last).toMatchObject({ status: 'completed', progress: 100 });
      expect(seen.map((e) => e.progress)).toEqual([40, 40, 100]);
      expect(rec.requests.map((r) => [r.url, r.headers.accept])).toEqual([
        [`/api/transcribe/jobs/stream/${jobId}`, 'text/event-stream'],
        [`/api/transcribe/jobs/stream/${jobId}`, 'text/event-stream'],
      ]);
    } finally {
      rec.server.close();
    }

    const dropping = await recordingServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(': nothing\n\n');
    });
    try {
      await expect(new GatewayClient({ baseUrl: dropping.url, reconnectDelayMs: 10, maxReconnects: 2 }).follow(jobId, () => {})).rejects.toThrow(ConnectionError);
      expect(dropping.requests).toHaveLength(3);
    } finally {
      dropping.server.close();
    }
  });

  it('leaves the compiled entry where package.json bin expects it after a build', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
    expect(pkg.bin).toEqual({ transcribe: 'dist/src/cli/main.js' });
    // The scratch build mirrors the real layout (rootDir = project root): dist/src/cli/main.js ↔ <out>/src/cli/main.js.
    expect(existsSync(path.join(out, pkg.bin!.transcribe.replace(/^dist\//, '')))).toBe(true);
  });
});
