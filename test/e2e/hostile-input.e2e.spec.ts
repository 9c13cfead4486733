import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { leftovers, pcmWav } from '../support/hostile.js';
import { followStream, submit } from '../support/http.js';
import { seededRandom as prng } from '../support/random.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261204);
const CASES = Number(process.env.FUZZ_CASES ?? 48);

/** Characters a hostile client likes: NUL and other controls, quotes, CR/LF, bidi marks, non-BMP, combining marks, path parts. */
const PALETTE = ['\u0000', '\u0001', '\u001f', '\u007f', '\u0085', '"', "'", '\\', '/', '..', '\r', '\n', '\r\n', ';', '=', '%00', '%', '\u202e', '\u200f', '\ufeff', '\ufffd', '😀', 'é', 'e\u0301', '会', 'a', 'Z', '0', ' ', '<script>', '{', '}', '[', ']'];

describe('hostile input: a bounded, seeded fuzz and the limits of a shared service', () => {
  let gw: TestGateway;
  const dir = scratchDir('hostile');
  const base = readFileSync(fixture('goforward.wav'));

  /** Transcripts of earlier suites in the shared test database: theirs never settle here. */
  let earlierSuites = new Set<string>();

  beforeAll(async () => {
    gw = await startGateway(
      testConfig({ RATE_LIMIT_SUBMIT_PER_MINUTE: '0', RATE_LIMIT_PER_MINUTE: '0', UPLOAD_IDLE_TIMEOUT: '1', OPENAI_API_WAIT_TIMEOUT_MS: '120000', JOB_MAX_RETRIES: '0' }),
    );
    earlierSuites = new Set((await gw.db.query<{ id: string }[]>('SELECT id FROM transcripts')).map((r) => r.id));
  });
  afterAll(async () => {
    await gw?.close();
  });

  /** Waits until no job is queued or processing, then returns what is left. */
  async function settled() {
    const deadline = Date.now() + 300_000;
    for (;;) {
      const stuck = (await gw.db.query<{ tid: string; id: string; status: string }[]>("SELECT t.id AS tid, j.id, t.status, t.metadata, t.size_bytes, t.duration_sec FROM transcripts t JOIN transcript_jobs j ON j.transcript_id = t.id WHERE t.status IN ('queued', 'processing')"))
        .filter((r) => !earlierSuites.has(r.tid));
      if (stuck.length === 0) break;
      if (Date.now() > deadline) {
        const views = await Promise.all(stuck.map(async (r) => (await fetch(`${gw.url}/api/transcribe/jobs/status/${r.id}`)).json()));
        throw new Error(`${stuck.length} jobs still open: ${JSON.stringify(stuck)} ${JSON.stringify(views)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return leftovers(gw);
  }

  /** A multipart body built by hand, so part headers can carry any bytes. */
  function multipart(parts: { name: Buffer | string; filename?: Buffer | string; contentType?: Buffer | string; body: Buffer | string }[]): { body: Buffer; type: string } {
    const boundary = `----hostile${Math.random().toString(16).slice(2)}`;
    const chunks: Buffer[] = [];
    for (const p of parts) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="`), Buffer.from(p.name), Buffer.from('"'));
      if (p.filename !== undefined) chunks.push(Buffer.from('; filename="'), Buffer.from(p.filename), Buffer.from('"'));
      chunks.push(Buffer.from('\r\n'));
      if (p.contentType !== undefined) chunks.push(Buffer.from('Content-Type: '), Buffer.from(p.contentType), Buffer.from('\r\n'));
      chunks.push(Buffer.from('\r\n'), Buffer.from(p.body), Buffer.from('\r\n'));
    }
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
  }

  it(`answers ${CASES} fuzzed submissions (seed ${SEED}) with no 5xx and leaves nothing half-written`, async () => {
    const rnd = prng(SEED);
    const int = (n: number) => Math.floor(rnd() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
    const text = (max: number) => Array.from({ length: int(max + 1) }, () => pick(PALETTE)).join('');
    const bytes = (max: number) => Buffer.from(Array.from({ length: int(max + 1) }, () => int(256)));
    const fields = ['prompt', 'model', 'engine', 'language', 'session_id', 'context_id', 'speaker_roles', 'speaker_role_names', 'speaker_role_keywords', 'callback_url', 'min_speakers', 'vad_filter', 'multichannel', 'x-unknown'];
    const kinds = ['field', 'filename', 'content-type', 'wav-header', 'bytes', 'request-header'] as const;
    const before = await leftovers(gw);
    // The test database is shared by every suite of the run: only rows made by this fuzz count.
    const earlier = new Set((await gw.db.query<{ id: string }[]>('SELECT id FROM transcripts')).map((r) => r.id));
    const answers: string[] = [];
    let accepted = 0;

    for (let i = 0; i < CASES; i++) {
      const kind = kinds[i % kinds.length];
      const openai = kind !== 'field' && int(4) === 0;
      let audio: Buffer = pcmWav({ samples: 1600 });
      let filename: Buffer | string = 'clip.wav';
      let contentType: Buffer | string = 'audio/wav';
      const extra: { name: string; body: Buffer | string }[] = [];
      const headers: Record<string, string> = {};
      if (kind === 'field') {
        audio = base;
        extra.push({ name: pick(fields), body: int(3) === 0 ? bytes(300) : text(int(2) ? 40 : 1500) });
      } else if (kind === 'filename') {
        filename = int(2) ? text(int(2) ? 80 : 400) : bytes(600);
      } else if (kind === 'content-type') {
        contentType = int(2) ? `audio/${'x'.repeat(int(3000))}` : bytes(int(2) ? 40 : 2000);
      } else if (kind === 'wav-header') {
        audio = pcmWav({ samples: int(3) === 0 ? int(3) : 1600 });
        for (let k = 0, n = 1 + int(4); k < n; k++) audio[int(44)] = pick([0, 1, 0x7f, 0x80, 0xfe, 0xff, int(256)]);
      } else if (kind === 'bytes') {
        audio = int(2) ? Buffer.concat([Buffer.from('RIFF\xff\xff\xff\xffWAVEfmt ', 'latin1'), bytes(2000)]) : bytes(4096);
      } else {
        // Request headers: an oversized one (Node answers 431) or a hostile Idempotency-Key.
        if (int(2)) headers['x-fuzz'] = 'a'.repeat(1 + int(40_000));
        else headers['idempotency-key'] = Array.from({ length: int(400) }, () => String.fromCharCode(0x20 + int(95))).join('');
        audio = base;
      }
      const form = openai
        ? multipart([{ name: 'model', body: 'whisper-1' }, { name: 'file', filename, contentType, body: audio }])
        : multipart([...extra, { name: 'file', filename, contentType, body: audio }]);
      const url = `${gw.url}${openai ? '/v1/audio/transcriptions' : '/api/transcribe/jobs/transcribe'}`;
      const res = await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': form.type }, body: form.body });
      const body = await res.text();
      answers.push(`#${i} ${kind}${openai ? ' (openai)' : ''}: ${res.status} ${body.slice(0, 160)}`);
      expect({ case: i, seed: SEED, kind, status: res.status < 500 ? 'below 500' : res.status, body: res.status < 500 ? '' : body }).toEqual({ case: i, seed: SEED, kind, status: 'below 500', body: '' });
      if (res.status === 202 || (openai && res.status === 200)) accepted++;
      // Answers that end in 4xx before the worker must not have written anything.
      if (res.status >= 400 && !openai) {
        const now = await leftovers(gw);
        expect({ i, transcripts: now.transcripts, jobs: now.jobs, uploads: now.uploads, emptyDirs: now.emptyDirs }).toEqual({ i, transcripts: before.transcripts + accepted, jobs: before.jobs + accepted, uploads: 0, emptyDirs: [] });
      }
    }

    const after = await settled();
    expect(after.transcripts).toBe(before.transcripts + accepted);
    expect(after.jobs).toBe(before.jobs + accepted);
    expect(after.uploads).toBe(0);
    expect(after.scratch).toBe(0);
    expect(after.emptyDirs).toEqual([]);
    const rows = (await gw.db.query<{ id: string; audio_key: string | null; status: string; error_details: { code?: string } | null }[]>('SELECT t.id, t.audio_key, t.status, j.error_details FROM transcripts t JOIN transcript_jobs j ON j.transcript_id = t.id'))
      .filter((r) => !earlier.has(r.id));
    expect(rows).toHaveLength(accepted);
    // Every object stored by the fuzz belongs to one of its rows, and every row's object is there.
    const storedNow = after.storedKeys.filter((k) => !before.storedKeys.includes(k));
    expect(storedNow).toEqual(rows.map((r) => r.audio_key).filter((k): k is string => k !== null).sort());
    for (const r of rows) if (r.audio_key) expect(existsSync(path.join(gw.config.DATA_DIR, r.audio_key))).toBe(true);
    // Accepted hostile audio ends as a result or a classified failure, never an unexplained internal error.
    expect(rows.filter((r) => r.status === 'failed' && (!r.error_details?.code || r.error_details.code === 'INTERNAL'))).toEqual([]);
    // At least some cases must reach each outcome, or the fuzz tests nothing.
    expect(answers.some((a) => / 4\d\d /.test(a))).toBe(true);
    expect(accepted).toBeGreaterThan(0);
  }, 600_000);

  it('drops an upload that stalls half-way with 408 after UPLOAD_IDLE_TIMEOUT and removes its temp file', async () => {
    const before = await settled();
    const { port } = new URL(gw.url);
    const boundary = 'stalled-boundary';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\nContent-Type: audio/wav\r\n\r\n`;
    const answer = await new Promise<{ text: string; closedAfterMs: number; uploadsWhileStalled: number }>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1');
      let text = '';
      let uploadsWhileStalled = -1;
      const started = Date.now();
      socket.on('connect', () => {
        socket.write(`POST /api/transcribe/jobs/transcribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 400000\r\n\r\n`);
        // Half a body, then nothing: the file part has started, so multer has a temp file open.
        socket.write(Buffer.concat([Buffer.from(head), base.subarray(0, 40_000)]));
        setTimeout(() => {
          void leftovers(gw).then((l) => (uploadsWhileStalled = l.uploads), reject);
        }, 400);
      });
      socket.on('data', (d) => (text += d.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => resolve({ text, closedAfterMs: Date.now() - started, uploadsWhileStalled }));
      setTimeout(() => reject(new Error(`no answer within 20 s; got: ${text}`)), 20_000).unref();
    });
    expect(answer.uploadsWhileStalled).toBe(1);
    expect(answer.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer.text).toMatch(/"code":"UPLOAD_IDLE_TIMEOUT"/);
    expect(answer.text).toMatch(/sent nothing for 1 s/);
    // Dropped about one idle period after the last byte, not minutes later.
    expect(answer.closedAfterMs).toBeLessThan(10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(await leftovers(gw)).toEqual(before);
  }, 300_000);

  it('answers the OpenAI route without a 5xx for a sub-frame clip (200, empty text) and a WAV without samples (4xx)', async () => {
    const openai = async (audio: Buffer) => {
      const form = new FormData();
      form.append('model', 'whisper-1');
      form.append('file', new Blob([new Uint8Array(audio)], { type: 'audio/wav' }), 'tiny.wav');
      const res = await fetch(`${gw.url}/v1/audio/transcriptions`, { method: 'POST', body: form });
      return { status: res.status, body: (await res.json()) as Record<string, unknown>, warnings: res.headers.get('x-transcription-warnings') };
    };
    const tiny = await openai(pcmWav({ samples: 10 }));
    expect(tiny.status).toBe(200);
    expect(tiny.body.text).toBe('');
    const none = await openai(Buffer.concat([pcmWav({}), Buffer.from([0])]));
    expect(none.status).toBeGreaterThanOrEqual(400);
    expect(none.status).toBeLessThan(500);
    expect(JSON.stringify(none.body)).toMatch(/no audio samples/);
  });

  it.each([
    ['1 s of noise', 'anoisesrc=d=1:r=16000:a=0.3:seed=2'],
    ['1 s of a 440 Hz tone', 'sine=f=440:d=1:r=16000'],
  ])('completes %s with an empty transcript and a warning (vad_filter=false too)', async (_name, source) => {
    const file = path.join(dir, `${source.replace(/[^a-z0-9]/gi, '_')}.wav`);
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', source, file]);
    const variants: Record<string, string>[] = [{}, { vad_filter: 'false' }];
    for (const fields of variants) {
      const res = await submit(gw.url, file, fields);
      expect(res.status).toBe(202);
      const events = await followStream<{ status: string; error?: unknown }>(`${gw.url}/api/transcribe/jobs/stream/${String(res.body.job_id)}`);
      expect(events.at(-1)).toMatchObject({ status: 'completed' });
      const result = (await (await fetch(`${gw.url}/api/transcribe/jobs/result/${String(res.body.job_id)}`)).json()) as { text: string; warnings: string[] };
      expect(result.text).toBe('');
      expect(result.warnings.join(' ')).toMatch(/no speech/);
    }
  });

  it('checks MAX_AUDIO_DURATION_SECONDS again at worker intake, from the decode', async () => {
    // The API accepts any length; a worker with a 2 s limit takes the job from the same queue.
    const shared = { RATE_LIMIT_SUBMIT_PER_MINUTE: '0', RATE_LIMIT_PER_MINUTE: '0', JOB_MAX_RETRIES: '0', QUEUE_PREFIX: `limit-${Date.now()}`, DATA_DIR: scratchDir('limit-data'), TEMP_DIR: scratchDir('limit-tmp') };
    const api = await startGateway(testConfig({ ...shared, APP_ROLE: 'api', MAX_AUDIO_DURATION_SECONDS: '0' }));
    const worker = await startGateway(testConfig({ ...shared, APP_ROLE: 'worker', MAX_AUDIO_DURATION_SECONDS: '2' }));
    try {
      const res = await submit(api.url, fixture('jfk.wav'));
      expect(res.status).toBe(202);
      const events = await followStream<{ status: string; error?: { code?: string; message?: string; max_duration_sec?: number } }>(`${api.url}/api/transcribe/jobs/stream/${String(res.body.job_id)}`);
      expect(events.at(-1)).toMatchObject({ status: 'failed', error: { code: 'AUDIO_TOO_LONG', max_duration_sec: 2 } });
      expect(events.at(-1)?.error?.message).toMatch(/the recording is longer than 0:02; the limit is 0:02 \(2 s, MAX_AUDIO_DURATION_SECONDS\)/);
    } finally {
      await worker.close();
      await api.close();
    }
  });
});
