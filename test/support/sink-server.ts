import { spawn, type ChildProcess } from 'node:child_process';

/**
 * An HTTP server in a child process that reads and discards request bodies, for measuring what a
 * large upload costs the sending process (a server in the test's own process would add its own
 * buffers to the measurement). Each POST is answered 200 with `answer` as JSON, or 307 to
 * `/elsewhere` when its path starts with `/redirect`. `GET /stats` reports what the POSTs carried.
 */
export interface SinkServer {
  url: string;
  /** Every POST so far: bytes read, and the Content-Length / Transfer-Encoding headers. */
  stats(): Promise<{ path: string; bytes: number; contentLength: number | null; transferEncoding: string | null }[]>;
  close(): void;
}

const SERVER = `
const http = require('node:http');
const answer = process.argv[1];
const seen = [];
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') return res.end(JSON.stringify(seen));
  if (req.url.startsWith('/redirect')) { req.resume(); res.writeHead(307, { location: '/elsewhere' }); return res.end(); }
  let bytes = 0;
  req.on('data', (c) => { bytes += c.length; });
  req.on('end', () => {
    seen.push({ path: req.url, bytes, contentLength: req.headers['content-length'] === undefined ? null : Number(req.headers['content-length']), transferEncoding: req.headers['transfer-encoding'] ?? null });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(answer);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

/** Starts the sink; `answer` is the JSON body of every POST. Close it in `afterAll`. */
export async function startSinkServer(answer: unknown): Promise<SinkServer> {
  const child: ChildProcess = spawn(process.execPath, ['-e', SERVER, JSON.stringify(answer)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (data) => resolve(Number(String(data).trim())));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    stats: async () => (await fetch(`${url}/stats`)).json() as ReturnType<SinkServer['stats']>,
    close: () => child.kill(),
  };
}

/**
 * Runs `work` while sampling the memory this process holds in ArrayBuffers (Buffers included,
 * where request bodies live) every few milliseconds. Unlike the resident set size, which the
 * process keeps after earlier tests, this falls again once buffers are collected, so the result
 * does not depend on what ran before.
 * @returns the largest growth over the amount at the start, in bytes.
 */
export async function peakBufferGrowth(work: () => Promise<unknown>): Promise<number> {
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, process.memoryUsage().arrayBuffers) - base;
}
