/**
 * Fair scheduling across API keys with real processes: two API processes and two worker processes
 * (`node dist/src/main.js`) on one private Redis and PostgreSQL, whisper-rocm served by the
 * OpenAI-protocol test server with a simulated inference time per audio second, one request at a
 * time (one GPU replica: WHISPER_ROCM_CONCURRENCY=1). Long recordings are cut into ~10 s chunks.
 *
 * Key A queues two long recordings; key B then one long recording and one short clip. The engine
 * is held busy until the three long recordings are split and queued, so the chunk order is the
 * scheduler's alone, however slow splitting is on a busy machine. B's clip must wait at the engine
 * for at most the chunk in progress, B's long job complete before A's second, and every job
 * complete exactly once (one engine call per piece). Meanwhile /engines, /metrics and the SSE
 * stream show the backlog per key; the per-key quota of queued audio seconds is shared by both
 * API processes and given back when jobs complete or are cancelled.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { apiKeyLabel } from '../../src/metrics/metrics.service.js';
import { fixture } from '../support/env.js';
import { startOpenAiTranscriptionServer, type OpenAiTranscriptionServer } from '../support/openai-transcription-server.js';
import { FaultHarness, GiveUp, waitFor, type GatewayProcess } from '../support/processes.js';
import { buildLongRecording } from '../support/recordings.js';

const KEY_A = 'fair-key-a-0123456789abcdef';
const KEY_B = 'fair-key-b-fedcba9876543210';
/** Simulated inference: ms per second of audio. A 10 s chunk takes 3 s, the 11 s clip 3.3 s. */
const MS_PER_AUDIO_SEC = 300;
const CHUNK_SEC = 10;
const CHUNK_MS = CHUNK_SEC * MS_PER_AUDIO_SEC;
/** Per-key quota: two long recordings fit, a third does not. */
const QUOTA_SEC = 150;
const ROUTE = '/api/transcribe/jobs/transcribe/whisper-rocm';

interface StatusView { status: string; stage: string; chunks_total?: number; queue_position?: { jobs_ahead?: number; chunks_ahead?: number } }

describe('faults: fair scheduling across API keys (real processes)', () => {
  let h: FaultHarness;
  let server: OpenAiTranscriptionServer;
  const apis: GatewayProcess[] = [];
  let long: { path: string; duration: number };
  const measured: Record<string, unknown> = {};

  const post = async (api: GatewayProcess, key: string, file: string, fields: Record<string, string> = {}) => {
    const form = new FormData();
    form.append('vad_filter', 'false');
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('file', new Blob([new Uint8Array(await readFile(file))], { type: 'audio/wav' }), path.basename(file));
    const res = await fetch(`${api.url}${ROUTE}`, { method: 'POST', body: form, headers: { Authorization: `Bearer ${key}` } });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
  };
  const get = async <T>(api: GatewayProcess, key: string, url: string): Promise<T> => {
    const res = await fetch(`${api.url}${url}`, { headers: { Authorization: `Bearer ${key}` } });
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
    return (url === '/metrics' ? await res.text() : await res.json()) as T;
  };
  const status = (key: string, jobId: string) => get<StatusView>(apis[0], key, `/api/transcribe/jobs/status/${jobId}`);
  const quotaHash = async () => (await h.redis.command('HGETALL', `${h.shared.QUEUE_PREFIX}:quota:queued-audio-sec`)) as string[];

  beforeAll(async () => {
    h = await FaultHarness.create('fair');
    server = await startOpenAiTranscriptionServer({ delayMsPerAudioSec: MS_PER_AUDIO_SEC, serial: true });
    const env = {
      API_KEYS: `${KEY_A},${KEY_B}`,
      WHISPER_ROCM_URL: server.url,
      WHISPER_ROCM_CONCURRENCY: '1',
      WHISPER_ROCM_CHUNKING_THRESHOLD: '15',
      WHISPER_ROCM_CHUNK_DURATION: String(CHUNK_SEC),
      WHISPER_ROCM_TIMEOUT: '120',
      MAX_QUEUED_AUDIO_SECONDS_PER_KEY: String(QUOTA_SEC),
    };
    apis.push(await h.startGateway({ role: 'api', name: 'api-1', env }));
    apis.push(await h.startGateway({ role: 'api', name: 'api-2', env }));
    for (const name of ['worker-1', 'worker-2']) await h.startGateway({ role: 'worker', name, env: { ...env, WORKER_CONCURRENCY: '1' } });
    long = buildLongRecording(h.root, 60);
  }, 300_000);

  afterAll(async () => {
    console.log(`fairness measured: ${JSON.stringify(measured)}`);
    await server?.close();
    await h?.cleanup();
  });

  it("lets key B's clip and long recording take turns with key A's backlog; every job completes once; the quota is shared and given back", async () => {
    const labelA = apiKeyLabel(KEY_A);
    // The engine starts busy (held) until A's and B's long recordings are split and queued, so the
    // order of the chunks is the scheduler's alone, however slow the machine is at splitting.
    server.hold();
    const a1 = await post(apis[0], KEY_A, long.path);
    const a2 = await post(apis[1], KEY_A, long.path);
    expect([a1.status, a2.status]).toEqual([202, 202]);
    const [idA1, idA2] = [a1.body.job_id as string, a2.body.job_id as string];
    const queued = (key: string, id: string) => waitFor(`job ${id}'s chunks to be queued`, async () => (await status(key, id)).stage === 'transcribing', 120_000, 100);
    await queued(KEY_A, idA1);
    await queued(KEY_A, idA2);

    // A's third recording would take A over its quota: refused by the other API process, with the numbers.
    const a3 = await post(apis[1], KEY_A, long.path);
    expect(a3.status).toBe(429);
    expect(Number(a3.retryAfter)).toBe(30);
    expect(a3.body).toMatchObject({ code: 'QUEUED_AUDIO_QUOTA', limit_sec: QUOTA_SEC, retry_after: 30 });
    expect(a3.body.message).toMatch(/^this API key already has \d+\.\d s of audio queued or running and this file adds \d+\.\d s, over the limit of 150 s per key \(MAX_QUEUED_AUDIO_SECONDS_PER_KEY\); retry after 30 s/);
    expect(a3.body.queued_sec).toBeCloseTo(2 * long.duration, 0);

    const b1 = await post(apis[0], KEY_B, long.path);
    expect(b1.status).toBe(202);
    const idB1 = b1.body.job_id as string;
    await queued(KEY_B, idB1);

    // Back-pressure is visible while the chunks wait: per engine and key in /engines and /metrics, and on SSE.
    const engines = await get<{ engines: Record<string, { queue: { waiting_chunks: number; oldest_wait_sec: number; by_key: Record<string, { waiting_chunks: number }> } }> }>(apis[1], KEY_B, '/api/transcribe/jobs/engines');
    const queue = engines.engines['whisper-rocm'].queue;
    measured.engines_queue = queue;
    expect(queue.waiting_chunks).toBeGreaterThan(0);
    expect(queue.oldest_wait_sec).toBeGreaterThan(0);
    // by_key shows the caller's own key only; A's waiting chunks count in the total.
    expect(Object.keys(queue.by_key)).toEqual([apiKeyLabel(KEY_B)]);
    expect(queue.by_key[apiKeyLabel(KEY_B)].waiting_chunks).toBeGreaterThan(0);
    expect(queue.waiting_chunks).toBeGreaterThan(queue.by_key[apiKeyLabel(KEY_B)].waiting_chunks);
    const metrics = await get<string>(apis[0], KEY_A, '/metrics');
    expect(metrics).toMatch(new RegExp(`gateway_queue_waiting\\{queue="chunks-whisper-rocm",engine="whisper-rocm",api_key="${labelA}"\\} [1-9]`));
    expect(metrics).toMatch(new RegExp(`gateway_queue_oldest_wait_seconds\\{queue="chunks-whisper-rocm",engine="whisper-rocm",api_key="${labelA}"\\} \\d`));
    const position = await firstEvent(`${apis[0].url}/api/transcribe/jobs/stream/${idA2}`, KEY_A, (e) => e.queue_position?.chunks_ahead !== undefined);
    measured.a2_sse_position = position.queue_position;
    // The engine is held, so the line stands still: the position is what BullMQ's priority order
    // says (other jobs' chunks before A2's first; how many depends on how the two workers' splits
    // of A1 and A2 interleaved, and on B1's turns).
    const order = (await h.redis.command('ZRANGE', `${h.shared.QUEUE_PREFIX}:chunks-whisper-rocm:prioritized`, 0, -1)) as string[];
    // For the log: each waiting chunk's job, key label and BullMQ priority (start tag + 1).
    measured.chunk_order = await Promise.all(order.map(async (id) => {
      const data = JSON.parse(String(await h.redis.command('HGET', `${h.shared.QUEUE_PREFIX}:chunks-whisper-rocm:${id}`, 'data'))) as { keyLabel?: string };
      const score = Number(await h.redis.command('ZSCORE', `${h.shared.QUEUE_PREFIX}:chunks-whisper-rocm:prioritized`, id));
      return `${id.slice(0, 8)}${id.slice(36)} ${data.keyLabel} ${Math.floor(score / 2 ** 32)}`;
    }));
    measured.fair_state = await h.redis.command('HGETALL', `${h.shared.QUEUE_PREFIX}:chunks-whisper-rocm:fair`);
    measured.ids = { idA1, idA2, idB1 };
    const firstOfA2 = order.findIndex((id) => id.startsWith(`${idA2}-p`));
    expect(firstOfA2).toBeGreaterThanOrEqual(0);
    expect(position.queue_position!.chunks_ahead).toBe(order.slice(0, firstOfA2).filter((id) => !id.startsWith(`${idA2}-p`)).length);

    // B's clip is queued once the engine works through the backlog.
    server.release();
    const released = Date.now();
    const clipSubmitted = Date.now();
    const b2 = await post(apis[1], KEY_B, fixture('jfk.wav'), { language: 'en' });
    expect(b2.status).toBe(202);
    const ids = { A1: idA1, A2: idA2, B1: idB1, B2: b2.body.job_id as string };
    const keyOf = (name: string) => (name.startsWith('A') ? KEY_A : KEY_B);

    // Finish times as the API first reports them.
    const doneAt: Record<string, number> = {};
    await waitFor('every job to complete', async () => {
      for (const [name, id] of Object.entries(ids)) {
        if (doneAt[name]) continue;
        const s = await status(keyOf(name), id);
        if (s.status === 'failed') throw new GiveUp(`${name} failed: ${JSON.stringify(s)}`);
        if (s.status === 'completed') doneAt[name] = Date.now();
      }
      return Object.keys(doneAt).length === 4;
    }, 300_000, 100);
    const calls = server.transcriptions();
    measured.engine_calls_s = calls.map((r) => [(r.arrivedAt! - released) / 1000, (r.startedAt! - released) / 1000, r.file?.wav?.durationSec, r.fields.language?.[0] ?? '']);
    measured.finished_after_release_s = Object.fromEntries(Object.entries(doneAt).map(([n, t]) => [n, (t - released) / 1000]));

    // B's clip (its call alone names a language) waited at the engine for at most the chunk in progress.
    const clip = calls.find((r) => r.fields.language?.[0] === 'en')!;
    const startedBetween = calls.filter((r) => r !== clip && r.startedAt! > clip.arrivedAt! && r.startedAt! < clip.startedAt!);
    measured.clip_engine_wait_ms = clip.startedAt! - clip.arrivedAt!;
    measured.clip_total_ms = doneAt.B2 - clipSubmitted;
    expect(startedBetween).toEqual([]);
    expect(clip.startedAt! - clip.arrivedAt!).toBeLessThanOrEqual(CHUNK_MS * 1.3 + 500);
    // End to end, the upload, intake (decode), saving and this poll on a busy 2-core machine come on top.
    expect(doneAt.B2 - clipSubmitted).toBeLessThanOrEqual(CHUNK_MS * 1.3 + 11 * MS_PER_AUDIO_SEC + 10_000);
    // B's long recording took turns with A's backlog rather than waiting behind both of A's. (Which
    // of A's two goes first is whichever a worker finished splitting first: on a busy machine A2 can.)
    expect(doneAt.B1).toBeLessThan(Math.max(doneAt.A1, doneAt.A2));

    // Exactly once: one engine call per piece of each job (no piece twice), one result each.
    const rows = await h.postgres.query<{ status: string; chunks: number | null }>("SELECT status, (metadata->>'chunks')::int AS chunks FROM transcripts");
    expect(rows.map((r) => r.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    const pieces = rows.map((r) => r.chunks ?? 0).sort((a, b) => a - b);
    expect(pieces[0]).toBe(0);
    expect(pieces.slice(1).every((n) => n >= 5)).toBe(true);
    expect(calls.filter((r) => r.status === 200)).toHaveLength(pieces.reduce((a, b) => a + b, 0) + 1);

    // Every finished job gave its seconds back; a cancelled job does too.
    expect(await quotaHash()).toEqual([]);
    const a4 = await post(apis[0], KEY_A, long.path);
    expect(a4.status).toBe(202);
    expect((await quotaHash())[0]).toBe(labelA);
    const cancelled = await fetch(`${apis[1].url}/api/transcribe/jobs/${a4.body.job_id as string}`, { method: 'DELETE', headers: { Authorization: `Bearer ${KEY_A}` } });
    expect(cancelled.status).toBeLessThan(300);
    await waitFor('the cancelled job to give its quota back', async () => (await quotaHash()).length === 0, 10_000, 100);
  }, 600_000);
});

/** Reads an SSE stream until an event satisfies `match`; returns it and closes the stream. */
async function firstEvent(url: string, key: string, match: (event: StatusView) => boolean, timeoutMs = 20_000): Promise<StatusView> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const res = await fetch(url, { headers: { Accept: 'text/event-stream', Authorization: `Bearer ${key}` }, signal: controller.signal });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const data = buffer.slice(0, end).split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        buffer = buffer.slice(end + 2);
        if (!data) continue;
        const event = JSON.parse(data) as StatusView;
        if (match(event)) return event;
      }
    }
    throw new Error(`the stream ended without a matching event: ${url}`);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}
