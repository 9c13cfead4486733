import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { getJson, submit } from '../support/http.js';

describe('bad input is answered with a clear 4xx and leaves nothing behind', () => {
  let gw: TestGateway;
  const dir = scratchDir('bad');
  const textAsWav = path.join(dir, 'notes.wav');
  const truncated = path.join(dir, 'truncated.wav');
  const headerOnly = path.join(dir, 'header-only.wav');
  const silentVideo = path.join(dir, 'silent.mp4');
  const empty = path.join(dir, 'empty.wav');

  beforeAll(async () => {
    writeFileSync(textAsWav, 'this is a text file pretending to be audio\n');
    writeFileSync(truncated, readFileSync(fixture('jfk.wav')).subarray(0, 100_000));
    writeFileSync(headerOnly, readFileSync(fixture('jfk.wav')).subarray(0, 30));
    writeFileSync(empty, Buffer.alloc(0));
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'color=c=red:s=64x48:d=1', '-c:v', 'libx264', silentVideo]);
    gw = await startGateway(testConfig({ MAX_FILE_SIZE: String(300_000) }));
  });
  afterAll(async () => {
    await gw?.close();
  });

  const counts = async () => {
    const [t] = await gw.db.query('SELECT count(*)::int AS n FROM transcripts');
    const [j] = await gw.db.query('SELECT count(*)::int AS n FROM transcript_jobs');
    const stored = readdirSync(gw.config.DATA_DIR, { recursive: true }).length;
    const uploads = readdirSync(path.join(gw.config.TEMP_DIR, 'uploads')).length;
    return { transcripts: t.n as number, jobs: j.n as number, stored, uploads };
  };

  const cases: { name: string; file: () => string | null; fields?: Record<string, string>; route?: string; status: number; code: string; message: RegExp }[] = [
    { name: 'no file', file: () => null, status: 400, code: 'FILE_REQUIRED', message: /'file' is required/ },
    { name: 'an empty file', file: () => empty, status: 400, code: 'AUDIO_EMPTY', message: /empty \(0 bytes\)/ },
    { name: 'a text file named .wav', file: () => textAsWav, status: 415, code: 'AUDIO_UNREADABLE', message: /not a readable audio or video file/ },
    { name: 'a WAV cut off mid-stream', file: () => truncated, status: 422, code: 'AUDIO_TRUNCATED', message: /truncated: its header declares 352078 bytes but 100000 arrived/ },
    { name: 'a WAV cut off inside its header', file: () => headerOnly, status: 415, code: 'AUDIO_UNREADABLE', message: /not a readable audio/ },
    { name: 'a video without an audio track', file: () => silentVideo, status: 415, code: 'AUDIO_NO_STREAM', message: /video has no audio stream/ },
    { name: 'an unknown engine (field)', file: () => fixture('goforward.wav'), fields: { engine: 'kaldi' }, status: 400, code: 'UNKNOWN_ENGINE', message: /Unknown engine 'kaldi'. Available engines: pocketsphinx/ },
    { name: 'an unknown engine (path)', file: () => fixture('goforward.wav'), route: '/api/transcribe/jobs/transcribe/kaldi', status: 400, code: 'UNKNOWN_ENGINE', message: /Available engines: pocketsphinx/ },
    { name: 'a malformed session_id', file: () => fixture('goforward.wav'), fields: { session_id: 'session-1' }, status: 400, code: 'VALIDATION_FAILED', message: /session_id must be a UUID/ },
    { name: 'a malformed context_id', file: () => fixture('goforward.wav'), fields: { context_id: '1234' }, status: 400, code: 'VALIDATION_FAILED', message: /context_id must be a UUID/ },
    { name: 'a malformed language', file: () => fixture('goforward.wav'), fields: { language: 'English!' }, status: 400, code: 'VALIDATION_FAILED', message: /language must be a language code/ },
    { name: 'an unknown form field', file: () => fixture('goforward.wav'), fields: { temperature: '0.2' }, status: 400, code: 'VALIDATION_FAILED', message: /property temperature should not exist/ },
    { name: 'a file over MAX_FILE_SIZE', file: () => fixture('jfk.wav'), status: 413, code: 'PAYLOAD_TOO_LARGE', message: /larger than the 300000-byte limit/ },
  ];

  it.each(cases)('rejects $name with $status', async ({ file, fields, route, status, code, message }) => {
    const before = await counts();
    const res = await submit(gw.url, file(), fields ?? {}, { route });
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
    expect(JSON.stringify(res.body.message)).toMatch(message);
    expect(await counts()).toEqual(before);
  });

  it('answers an unknown job id with 404 on status, result, stream and audio', async () => {
    const id = '3f1e0c9a-7a53-4f43-9f7e-2b1d8a6c0e11';
    for (const route of ['status', 'result', 'stream', 'audio']) {
      const res = await getJson(`${gw.url}/api/transcribe/jobs/${route}/${id}`);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 'JOB_NOT_FOUND', message: `no job with id ${id}` });
    }
  });

  it('answers a malformed job id with 400', async () => {
    const res = await getJson(`${gw.url}/api/transcribe/jobs/status/..%2F..%2Fetc%2Fpasswd`);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/job_id must be a UUID/);
  });

  it('accepts a good file after all that and stores it under a sanitised name', async () => {
    const res = await submit(gw.url, fixture('goforward.wav'), { session_id: '6f0b1c8e-12ab-4cde-9f00-112233445566' }, { filename: '../../etc/passwd.wav' });
    expect(res.status).toBe(202);
    const [row] = await gw.db.query('SELECT filename, audio_key, session_id FROM transcripts WHERE id = $1', [res.body.transcript_id]);
    expect(row.filename).toBe('passwd.wav');
    expect(row.audio_key).toBe(`audio/${res.body.transcript_id}/passwd.wav`);
    expect(row.session_id).toBe('6f0b1c8e-12ab-4cde-9f00-112233445566');
  });
});
