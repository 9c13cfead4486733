import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/** The job API's base path (README: all endpoints under /api/transcribe/jobs). */
export const JOBS = '/api/transcribe/jobs';

/** The fields of a job state the benchmarks read (GET /status and each SSE event carry the same shape). */
export interface JobState {
  job_id: string;
  status: 'queued' | 'processing' | 'completed' | 'failed';
  progress: number;
  stage?: string;
  worker_id?: string | null;
  chunks_done?: number;
  chunks_total?: number;
  result?: { segments_count: number; duration: number };
  error?: unknown;
}

/**
 * Submits a file (multipart field `file`, read whole: use it for recordings, not for the 1 GB upload).
 * @returns HTTP status and parsed JSON body.
 */
export async function submitFile(baseUrl: string, filePath: string, route = `${JOBS}/transcribe`, fields: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  return submitBytes(baseUrl, await readFile(filePath), path.basename(filePath), route, fields);
}

/** Submits bytes already in memory as the multipart `file` (the ingest benchmark reuses one clip). */
export async function submitBytes(baseUrl: string, data: Buffer, filename: string, route = `${JOBS}/transcribe`, fields: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([new Uint8Array(data)], { type: filename.endsWith('.wav') ? 'audio/wav' : 'application/octet-stream' }), filename);
  const res = await fetch(`${baseUrl}${route}`, { method: 'POST', body: form });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { raw: text };
  }
  return { status: res.status, body };
}

/**
 * Submits one clip over and over, as a load generator should: the multipart body is encoded once
 * and every request reuses one of `sockets` keep-alive connections (an http.Agent), so the
 * client's own CPU per request stays small beside the gateway's on a shared machine. (fetch with
 * a fresh FormData per request, as submitBytes does, costs about 3 ms of CPU per request on the
 * 2-core bench machine, as much as the gateway's own work; this costs about 0.35 ms.)
 */
export class ClipSubmitter {
  private readonly agent: http.Agent;
  private readonly body: Buffer;
  private readonly url: URL;
  private readonly contentType: string;

  /**
   * @param route the submit endpoint's path, e.g. `/api/transcribe/jobs/transcribe/pocketsphinx`.
   * @param sockets keep-alive connections (at least the number of requests in flight).
   */
  constructor(baseUrl: string, clip: Buffer, filename: string, route: string, sockets: number) {
    const boundary = `----gw-bench-${Math.random().toString(36).slice(2)}`;
    const type = filename.endsWith('.wav') ? 'audio/wav' : 'application/octet-stream';
    this.body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`),
      clip,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    this.contentType = `multipart/form-data; boundary=${boundary}`;
    this.url = new URL(`${baseUrl}${route}`);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  }

  /** One submission. @returns the HTTP status (the body is read and dropped). */
  submit(): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { agent: this.agent, hostname: this.url.hostname, port: this.url.port, path: this.url.pathname, method: 'POST', headers: { 'Content-Type': this.contentType, 'Content-Length': this.body.length } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(this.body);
    });
  }

  /** Closes the keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }
}

/** Splits an SSE byte stream into `data:` payloads (the gateway sends one JSON object per event). */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n/g, '\n');
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (data) yield data;
    }
  }
}

/**
 * Follows a job's SSE stream (GET /stream/:job_id) until its terminal state, as a client would.
 * @returns every state received, each with `at` = performance.now() (ms) when it arrived.
 * @throws when the stream is not 200 or `timeoutMs` passes first.
 */
export async function followJob(baseUrl: string, jobId: string, timeoutMs: number): Promise<(JobState & { at: number })[]> {
  const res = await fetch(`${baseUrl}${JOBS}/stream/${jobId}`, { headers: { Accept: 'text/event-stream' }, signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200 || !res.body) throw new Error(`stream of ${jobId} answered ${res.status}: ${await res.text()}`);
  const states: (JobState & { at: number })[] = [];
  for await (const data of sseData(res.body)) {
    const state = { ...(JSON.parse(data) as JobState), at: performance.now() };
    states.push(state);
    if (state.status === 'completed' || state.status === 'failed') break;
  }
  return states;
}

/**
 * Opens an SSE stream and keeps it open (reading and discarding events) until close().
 * `first` resolves when the first event (the current state, sent at once) has arrived.
 */
export function holdStream(baseUrl: string, jobId: string): { first: Promise<void>; close: () => void } {
  const controller = new AbortController();
  const first = (async () => {
    const res = await fetch(`${baseUrl}${JOBS}/stream/${jobId}`, { headers: { Accept: 'text/event-stream' }, signal: controller.signal });
    if (res.status !== 200 || !res.body) throw new Error(`stream answered ${res.status}`);
    const events = sseData(res.body);
    await events.next();
    // Keep consuming so the server never blocks on a full socket; ends with close().
    void (async () => {
      try {
        for await (const _ of events) { /* discard */ }
      } catch { /* aborted */ }
    })();
  })();
  return { first, close: () => controller.abort() };
}

/** The parts of GET /result/:job_id the benchmarks read. */
export interface JobResult {
  text: string;
  duration: number;
  segments: { start: number; end: number; text: string; words: { word: string; start: number; end: number }[] }[];
}

/** GET /result/:job_id. @throws unless 200. */
export async function getResult(baseUrl: string, jobId: string): Promise<JobResult> {
  const res = await fetch(`${baseUrl}${JOBS}/result/${jobId}`);
  if (res.status !== 200) throw new Error(`result of ${jobId} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as JobResult;
}
