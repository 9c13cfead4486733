import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';
import { TranscriptionQueue } from '../../src/transcription/transcription.queue.js';

interface StatusView { status: string; error?: Record<string, unknown>; result?: { segments_count: number; duration: number; warnings?: string[] } }
interface ResultView { duration: number; text: string; warnings: string[] }

/**
 * Recordings cut short (the first bytes of a real file, made with ffmpeg from the fixtures): the
 * submission refuses what the header shows (422), the worker's intake warns about the rest with
 * both durations, and audio that does not decode fails clearly. Real gateway, Postgres, Redis,
 * ffmpeg and pocketsphinx.
 */
describe('truncated and undecodable audio', () => {
  const dir = scratchDir('truncated');
  const file = (name: string) => path.join(dir, name);
  const cut = (source: string, name: string, bytes: number) => {
    writeFileSync(file(name), readFileSync(source).subarray(0, bytes));
    return file(name);
  };

  beforeAll(() => {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', fixture('jfk.wav'), '-c:a', 'flac', file('jfk.flac')]);
  });

  /** Submits, follows the job to its end; returns the last SSE event, the status and the result. */
  async function run(gw: TestGateway, upload: string) {
    const submitted = await submit(gw.url, upload);
    expect(submitted.status).toBe(202);
    const jobId = submitted.body.job_id as string;
    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${jobId}`);
    const status = await getJson<StatusView>(`${gw.url}/api/transcribe/jobs/status/${jobId}`);
    const result = await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${jobId}`);
    return { submitted, last: events[events.length - 1], status: status.body, result };
  }

  describe('with the header probe (INGEST_PROBE=header, the default)', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await startGateway(testConfig({ RATE_LIMIT_SUBMIT_PER_MINUTE: '0', RATE_LIMIT_PER_MINUTE: '0' }));
    });
    afterAll(async () => {
      await gw?.close();
    });

    const counts = async () => {
      const [t] = await gw.db.query('SELECT count(*)::int AS n FROM transcripts');
      return { transcripts: t.n as number, stored: readdirSync(gw.config.DATA_DIR, { recursive: true }).length, uploads: readdirSync(path.join(gw.config.TEMP_DIR, 'uploads')).length };
    };

    it('refuses the first 20 kB of an 11 s MP3 with 422, naming both lengths, and keeps nothing', async () => {
      const before = await counts();
      const res = await submit(gw.url, cut(fixture('jfk.mp3'), 'jfk-20k.mp3', 20_000));
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ code: 'AUDIO_TRUNCATED', claimed_duration_sec: 11.088, size_bytes: 20_000 });
      expect(res.body.message).toMatch(/^the MP3 file is truncated: its header declares \d+ bytes of audio \(11\.1 s\) but \d+ arrived \(about 2\.\d s\)$/);
      expect(await counts()).toEqual(before);
    });

    it('completes a cut FLAC with a warning in the result and the status that gives both durations', async () => {
      const { submitted, last, status, result } = await run(gw, cut(file('jfk.flac'), 'jfk-cut.flac', 60_000));
      expect(submitted.body.message).toMatch(/11\.0 s of flac audio/);
      expect(last.status).toBe('completed');
      expect(result.status).toBe(200);
      const warning = result.body.warnings.find((w) => w.startsWith('the recording looks truncated'));
      expect(warning).toMatch(/^the recording looks truncated: its header claims 11\.0 s but only [1-5]\.\d s of audio could be decoded/);
      expect(warning).toContain(`only ${result.body.duration.toFixed(1)} s`);
      expect(status.result?.warnings).toEqual([warning]);
      // Once the queue has forgotten the job (REDIS_JOB_TTL), its status read from Postgres says the same.
      await gw.app.get(TranscriptionQueue).remove(String(submitted.body.job_id));
      const fromDatabase = await getJson<StatusView>(`${gw.url}/api/transcribe/jobs/status/${String(submitted.body.job_id)}`);
      expect(fromDatabase.body).toMatchObject({ status: 'completed', result: { warnings: [warning] } });
    });

    it('completes the whole recording without that warning', async () => {
      const { submitted, result, status } = await run(gw, file('jfk.flac'));
      expect(result.body.warnings.filter((w) => /truncated/.test(w))).toEqual([]);
      expect(status.result?.warnings).toBeUndefined();
      await gw.app.get(TranscriptionQueue).remove(String(submitted.body.job_id));
      const fromDatabase = await getJson<StatusView>(`${gw.url}/api/transcribe/jobs/status/${String(submitted.body.job_id)}`);
      expect(fromDatabase.body.status).toBe('completed');
      expect(fromDatabase.body.result?.warnings).toBeUndefined();
      expect(result.body.text).toMatch(/country/);
    });

    it('fails a file whose header reads well but whose audio does not decode, saying so', async () => {
      writeFileSync(file('garbage.flac'), Buffer.concat([readFileSync(file('jfk.flac')).subarray(0, 8192), Buffer.alloc(200_000, 0x5a)]));
      const { submitted, last, status } = await run(gw, file('garbage.flac'));
      expect(submitted.status).toBe(202);
      expect(last.status).toBe('failed');
      expect(status.error).toMatchObject({ code: 'AUDIO_DECODE_FAILED', retryable: false });
      expect(String(status.error?.message)).toMatch(/decode/);
      expect(JSON.stringify(status)).not.toContain(dir);
    });
  });

  describe('with ffprobe at submit (INGEST_PROBE=ffprobe): the intake still sees the cut', () => {
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await startGateway(testConfig({ INGEST_PROBE: 'ffprobe', RATE_LIMIT_SUBMIT_PER_MINUTE: '0', RATE_LIMIT_PER_MINUTE: '0' }));
    });
    afterAll(async () => {
      await gw?.close();
    });

    it('queues the first 20 kB of an 11 s MP3 as ffprobe estimates it, and warns with both durations', async () => {
      const { submitted, last, status, result } = await run(gw, cut(fixture('jfk.mp3'), 'jfk-20k-b.mp3', 20_000));
      expect(submitted.body.message).toMatch(/11\.1 s of mp3 audio/);
      expect(last.status).toBe('completed');
      expect(result.body.warnings).toContainEqual(expect.stringMatching(/^the recording looks truncated: its header claims 11\.1 s but only 2\.\d s of audio could be decoded/));
      expect(status.result?.warnings).toHaveLength(1);
    });
  });
});
