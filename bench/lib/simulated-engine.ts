import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

/** One transcription request as the simulated engine saw it; epoch ms. */
export interface SimulatedCall {
  arrivedAt: number;
  startedAt: number;
  endedAt: number;
  /** Seconds of audio in the uploaded WAV. */
  audioSec: number;
  /** The `language` form field, or null. */
  language: string | null;
}

/** A running simulated engine. */
export interface SimulatedEngine {
  /** `http://127.0.0.1:<port>`: the gateway's WHISPER_ROCM_URL. */
  url: string;
  calls: SimulatedCall[];
  /** Holds inference until release() (requests wait in arrival order). */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

/** Seconds of samples in a RIFF/WAVE file (the gateway always sends 16-bit PCM WAV); 0 when not one. */
function wavSeconds(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 12 || view.getUint32(0, false) !== 0x52494646 || view.getUint32(8, false) !== 0x57415645) return 0;
  let byteRate = 0;
  for (let off = 12; off + 8 <= bytes.length;) {
    const id = view.getUint32(off, false);
    const size = view.getUint32(off + 4, true);
    if (id === 0x666d7420) byteRate = view.getUint32(off + 16, true);
    if (id === 0x64617461) return byteRate ? Math.min(size, bytes.length - off - 8) / byteRate : 0;
    off += 8 + size + (size % 2);
  }
  return 0;
}

/**
 * A stand-in for one whisper-rocm replica (the OpenAI transcription protocol: `GET /health`,
 * `POST /v1/audio/transcriptions` answering `verbose_json`) whose inference takes
 * `msPerAudioSec` per second of audio and runs one request at a time, in arrival order — the
 * shape of a single GPU. The transcript is one placeholder word per request: the benchmark
 * measures scheduling, not recognition. (The tests' protocol server lives under test/, which the
 * benchmark build does not compile.)
 */
export async function startSimulatedEngine(msPerAudioSec: number): Promise<SimulatedEngine> {
  const calls: SimulatedCall[] = [];
  let line: Promise<void> = Promise.resolve();
  let gate: Promise<void> = Promise.resolve();
  let openGate: () => void = () => undefined;

  const server = http.createServer((req, res) => {
    const arrivedAt = Date.now();
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', model: 'simulated' }));
      return;
    }
    if (req.method !== 'POST' || !req.url?.startsWith('/v1/audio/transcriptions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error', code: 'not_found' } }));
      return;
    }
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    void new Request('http://127.0.0.1/v1/audio/transcriptions', { method: 'POST', headers, body: Readable.toWeb(req) as ReadableStream, duplex: 'half' })
      .formData()
      .then(async (form) => {
        const file = form.get('file');
        const audioSec = file && typeof file !== 'string' ? wavSeconds(new Uint8Array(await file.arrayBuffer())) : 0;
        const language = form.get('language');
        const call: SimulatedCall = { arrivedAt, startedAt: 0, endedAt: 0, audioSec, language: typeof language === 'string' ? language : null };
        calls.push(call);
        const turn = line.then(async () => {
          await gate;
          call.startedAt = Date.now();
          await new Promise((r) => setTimeout(r, msPerAudioSec * audioSec));
          call.endedAt = Date.now();
        });
        line = turn;
        await turn;
        const duration = Math.round(audioSec * 1000) / 1000;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
          task: 'transcribe', language: 'english', duration, text: ' speech',
          segments: [{ id: 0, seek: 0, start: 0, end: duration, text: ' speech', tokens: [], temperature: 0, avg_logprob: -0.1, compression_ratio: 1, no_speech_prob: 0.01 }],
          words: [{ word: ' speech', start: 0, end: duration }],
        }));
      })
      .catch((err: unknown) => {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: String(err), type: 'invalid_request_error', code: 'invalid_multipart' } }));
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    hold: () => {
      gate = new Promise<void>((resolve) => { openGate = resolve; });
    },
    release: () => openGate(),
    close: async () => {
      openGate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
