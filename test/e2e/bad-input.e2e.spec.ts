import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { getJson, submit } from '../support/http.js';
import { leftovers, pcmWav } from '../support/hostile.js';

describe('bad input is answered with a clear 4xx and leaves nothing behind', () => {
  let gw: TestGateway;
  const dir = scratchDir('bad');
  const textAsWav = path.join(dir, 'notes.wav');
  const truncated = path.join(dir, 'truncated.wav');
  const headerOnly = path.join(dir, 'header-only.wav');
  const silentVideo = path.join(dir, 'silent.mp4');
  const empty = path.join(dir, 'empty.wav');
  const headerOnlyWav = path.join(dir, 'header-only-44.wav');
  const unknownTag = path.join(dir, 'tag-1234.wav');
  const zeroBits = path.join(dir, 'zero-bits.wav');
  const oneHertz = path.join(dir, 'one-hertz.wav');
  const twoMinutes = path.join(dir, 'two-minutes.flac');

  beforeAll(async () => {
    writeFileSync(textAsWav, 'this is a text file pretending to be audio\n');
    writeFileSync(truncated, readFileSync(fixture('jfk.wav')).subarray(0, 100_000));
    writeFileSync(headerOnly, readFileSync(fixture('jfk.wav')).subarray(0, 30));
    writeFileSync(empty, Buffer.alloc(0));
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'color=c=red:s=64x48:d=1', '-c:v', 'libx264', silentVideo]);
    writeFileSync(headerOnlyWav, pcmWav({}));
    writeFileSync(unknownTag, pcmWav({ formatTag: 0x1234, samples: 16_000 }));
    writeFileSync(zeroBits, pcmWav({ bits: 0, samples: 16_000 }));
    writeFileSync(oneHertz, pcmWav({ rate: 1, samples: 16_000 }));
    // 2 minutes of 8 kHz silence compress to ~25 kB: over the suite's 60 s limit, under its size limit.
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '120', '-c:a', 'flac', twoMinutes]);
    gw = await startGateway(testConfig({ MAX_FILE_SIZE: String(300_000), MAX_AUDIO_DURATION_SECONDS: '60', RATE_LIMIT_SUBMIT_PER_MINUTE: '0', RATE_LIMIT_PER_MINUTE: '0' }));
  });
  afterAll(async () => {
    await gw?.close();
  });

  const counts = () => leftovers(gw);

  const cases: { name: string; file: () => string | null; fields?: Record<string, string>; route?: string; fileField?: string; twoFiles?: boolean; status: number; code: string; message: RegExp }[] = [
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
    { name: 'an unknown form field', file: () => fixture('goforward.wav'), fields: { temperature: '0.2' }, status: 400, code: 'VALIDATION_FAILED', message: /^"unknown field 'temperature'; accepted fields: .*audio_url.*engine.*language/ },
    { name: 'a file over MAX_FILE_SIZE (streamed, aborted early)', file: () => fixture('jfk.wav'), status: 413, code: 'PAYLOAD_TOO_LARGE', message: /larger than the 300000-byte limit/ },
    { name: 'min_speakers that is not a number', file: () => fixture('goforward.wav'), fields: { min_speakers: 'two' }, status: 400, code: 'VALIDATION_FAILED', message: /min_speakers must be an integer between 1 and 20/ },
    { name: 'max_speakers out of range', file: () => fixture('goforward.wav'), fields: { max_speakers: '50' }, status: 400, code: 'VALIDATION_FAILED', message: /max_speakers must be an integer between 1 and 20/ },
    { name: 'min_speakers > max_speakers', file: () => fixture('goforward.wav'), fields: { min_speakers: '4', max_speakers: '2' }, status: 400, code: 'INVALID_OPTION', message: /min_speakers \(4\) must not exceed max_speakers \(2\)/ },
    { name: 'a non-boolean enable_diarization', file: () => fixture('goforward.wav'), fields: { enable_diarization: 'maybe' }, status: 400, code: 'VALIDATION_FAILED', message: /enable_diarization must be true or false/ },
    { name: 'a non-boolean multichannel', file: () => fixture('goforward.wav'), fields: { multichannel: 'stereo' }, status: 400, code: 'VALIDATION_FAILED', message: /multichannel must be true or false/ },
    { name: 'multichannel on a mono recording', file: () => fixture('goforward.wav'), fields: { multichannel: 'true' }, status: 400, code: 'INVALID_OPTION', message: /2 or more channels/ },
    { name: 'an invalid speaker_roles value', file: () => fixture('goforward.wav'), fields: { speaker_roles: 'loudest' }, status: 400, code: 'VALIDATION_FAILED', message: /speaker_roles must be one of/ },
    { name: 'speaker_role_keywords that is not JSON', file: () => fixture('goforward.wav'), fields: { speaker_roles: 'keywords', speaker_role_keywords: '{provider:' }, status: 400, code: 'INVALID_OPTION', message: /speaker_role_keywords must be a JSON object/ },
    { name: 'speaker_role_names with odd characters', file: () => fixture('goforward.wav'), fields: { speaker_roles: 'first_speaker', speaker_role_names: '<script>' }, status: 400, code: 'VALIDATION_FAILED', message: /speaker_role_names must be/ },
    { name: 'a model the engine does not offer', file: () => fixture('goforward.wav'), fields: { model: 'large-v3' }, status: 400, code: 'INVALID_OPTION', message: /model 'large-v3' is not available for engine pocketsphinx; available models: en-us/ },
    { name: 'an oversized prompt', file: () => fixture('goforward.wav'), fields: { prompt: 'x'.repeat(1001) }, status: 400, code: 'VALIDATION_FAILED', message: /prompt must be shorter than or equal to 1000 characters/ },
    { name: 'an oversized engine name', file: () => fixture('goforward.wav'), fields: { engine: 'e'.repeat(100) }, status: 400, code: 'VALIDATION_FAILED', message: /engine must be shorter than or equal to 64 characters/ },
    { name: 'an unknown context_id', file: () => fixture('goforward.wav'), fields: { context_id: '0d6f7a3e-1111-4222-8333-944455566677', engine: 'pocketsphinx' }, status: 400, code: 'INVALID_OPTION', message: /pocketsphinx does not support word boosting/ },
    { name: 'both file and audio_url', file: () => fixture('goforward.wav'), fields: { audio_url: 'https://example.com/a.wav' }, status: 400, code: 'INVALID_OPTION', message: /either 'file' or 'audio_url', not both/ },
    { name: 'an audio_url that is not http(s)', file: () => null, fields: { audio_url: 'file:///etc/passwd' }, status: 400, code: 'URL_INVALID', message: /http/ },
    { name: 'an audio_url on a loopback address', file: () => null, fields: { audio_url: 'http://127.0.0.1:1/a.wav' }, status: 400, code: 'URL_FORBIDDEN_ADDRESS', message: /not allowed|refused|private|loopback/i },
    { name: 'an oversized audio_url', file: () => null, fields: { audio_url: `https://example.com/${'a'.repeat(3000)}` }, status: 400, code: 'VALIDATION_FAILED', message: /audio_url must be at most 2048 characters/ },
    { name: 'a NUL byte in prompt', file: () => fixture('goforward.wav'), fields: { prompt: 'call\u0000me' }, status: 400, code: 'VALIDATION_FAILED', message: /prompt must not contain NUL characters \(U\+0000\)/ },
    { name: 'a NUL byte in model', file: () => fixture('goforward.wav'), fields: { model: 'en-us\u0000' }, status: 400, code: 'VALIDATION_FAILED', message: /model must not contain NUL characters/ },
    { name: 'a NUL byte in engine', file: () => fixture('goforward.wav'), fields: { engine: 'pocket\u0000sphinx' }, status: 400, code: 'VALIDATION_FAILED', message: /engine must not contain NUL characters/ },
    { name: 'a NUL byte in callback_url', file: () => fixture('goforward.wav'), fields: { callback_url: 'https://hooks.example/\u0000' }, status: 400, code: 'VALIDATION_FAILED', message: /callback_url must not contain NUL characters/ },
    { name: 'a NUL byte in speaker_role_keywords', file: () => fixture('goforward.wav'), fields: { speaker_roles: 'keywords', speaker_role_keywords: '{"provider": ["x\u0000"]}' }, status: 400, code: 'VALIDATION_FAILED', message: /speaker_role_keywords must not contain NUL/ },
    { name: 'a JSON-escaped NUL in speaker_role_keywords', file: () => fixture('goforward.wav'), fields: { speaker_roles: 'keywords', speaker_role_keywords: '{"provider": ["x\\u0000"]}' }, status: 400, code: 'INVALID_OPTION', message: /speaker_role_keywords must be a JSON object/ },
    { name: 'a WAV that is only a 44-byte header', file: () => headerOnlyWav, status: 422, code: 'AUDIO_NO_SAMPLES', message: /holds no audio samples/ },
    { name: 'a WAV with an unknown format tag', file: () => unknownTag, status: 422, code: 'AUDIO_UNSUPPORTED_FORMAT', message: /format tag 0x1234, which no decoder handles/ },
    { name: 'a WAV with 0 bits per sample', file: () => zeroBits, status: 422, code: 'AUDIO_UNSUPPORTED_FORMAT', message: /0 bits per sample for PCM; accepted: 8, 16, 24, 32, 64/ },
    { name: 'a WAV at 1 Hz', file: () => oneHertz, status: 422, code: 'AUDIO_UNSUPPORTED_FORMAT', message: /sample rate of 1 Hz; accepted: 1000–768000 Hz/ },
    { name: 'a recording over MAX_AUDIO_DURATION_SECONDS', file: () => twoMinutes, status: 413, code: 'AUDIO_TOO_LONG', message: /the recording is 2:00 long \(120\.0 s\); the limit is 1:00 \(60 s, MAX_AUDIO_DURATION_SECONDS\)/ },
    { name: 'the file under another field name', file: () => fixture('goforward.wav'), fileField: 'audio', status: 400, code: 'UNEXPECTED_FILE_FIELD', message: /unexpected file field 'audio': send the audio as the multipart field 'file'/ },
    { name: 'two files', file: () => fixture('goforward.wav'), twoFiles: true, status: 400, code: 'TOO_MANY_FILES', message: /one file per request/ },
  ];

  it.each(cases)('rejects $name with $status', async ({ file, fields, route, fileField, twoFiles, status, code, message }) => {
    const before = await counts();
    const res = fileField || twoFiles ? await rawSubmit(file()!, fileField ?? 'file', Boolean(twoFiles)) : await submit(gw.url, file(), fields ?? {}, { route });
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
    expect(JSON.stringify(res.body.message)).toMatch(message);
    expect(await counts()).toEqual(before);
  });

  /** Multipart with a custom file field name, or the file twice. */
  async function rawSubmit(path: string, field: string, twice: boolean) {
    const form = new FormData();
    const blob = new Blob([readFileSync(path)], { type: 'audio/wav' });
    form.append(field, blob, 'a.wav');
    if (twice) form.append(field, blob, 'b.wav');
    const res = await fetch(`${gw.url}/api/transcribe/jobs/transcribe`, { method: 'POST', body: form });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it.each([
    ['a JSON body', 'application/json', '{"file": "audio.wav"}'],
    ['a plain-text body', 'text/plain', 'hello'],
    ['an empty body', 'application/octet-stream', ''],
  ])('rejects %s instead of multipart with a 4xx', async (_name, type, body) => {
    const before = await counts();
    const res = await fetch(`${gw.url}/api/transcribe/jobs/transcribe`, { method: 'POST', headers: { 'Content-Type': type }, body });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    const json = (await res.json()) as { message: string };
    expect(String(json.message)).toMatch(/file/);
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

  it('answers an unknown job on DELETE with 404 and an unknown export format with 400', async () => {
    const del = await fetch(`${gw.url}/api/transcribe/jobs/3f1e0c9a-7a53-4f43-9f7e-2b1d8a6c0e11`, { method: 'DELETE' });
    expect(del.status).toBe(404);
    const fmt = await getJson(`${gw.url}/api/transcribe/jobs/result/3f1e0c9a-7a53-4f43-9f7e-2b1d8a6c0e11?format=docx`);
    expect(fmt.status).toBe(400);
    expect(JSON.stringify(fmt.body)).toMatch(/json, txt, srt, vtt|json.*txt.*srt.*vtt/);
  });

  it('accepts a unicode file name and keeps it readable', async () => {
    const res = await submit(gw.url, fixture('goforward.wav'), {}, { filename: 'Überweisung – 会议 🎙.wav' });
    expect(res.status).toBe(202);
    const [row] = await gw.db.query('SELECT filename FROM transcripts WHERE id = $1', [res.body.transcript_id]);
    expect(row.filename).toBe('Überweisung – 会议 🎙.wav');
  });

  it('accepts a part Content-Type longer than its column, storing no declared type, and serves the detected one', async () => {
    const before = await counts();
    const res = await submit(gw.url, fixture('goforward.wav'), {}, { contentType: `audio/${'x'.repeat(400)}` });
    expect(res.status).toBe(202);
    const [row] = await gw.db.query('SELECT mime_type FROM transcripts WHERE id = $1', [res.body.transcript_id]);
    expect(row.mime_type).toBeNull();
    const audio = await fetch(`${gw.url}/api/transcribe/jobs/audio/${String(res.body.job_id)}`);
    expect(audio.headers.get('content-type')).toBe('audio/wav');
    await audio.arrayBuffer();
    expect((await counts()).transcripts).toBe(before.transcripts + 1);
  });

  it.each([
    ['300 ASCII characters', `${'a'.repeat(300)}.wav`],
    ['200 two-byte characters (400 bytes)', `${'ü'.repeat(200)}.wav`],
    ['255 three-byte characters (765 bytes)', `${'会'.repeat(255)}.wav`],
    ['100 four-byte emoji (400 bytes)', `${'🎙'.repeat(100)}.wav`],
  ])('accepts a file name of %s and stores it within the byte budget', async (_name, filename) => {
    const res = await submit(gw.url, fixture('goforward.wav'), {}, { filename });
    expect(res.status).toBe(202);
    const [row] = await gw.db.query('SELECT filename, audio_key FROM transcripts WHERE id = $1', [res.body.transcript_id]);
    expect(Buffer.byteLength(row.filename as string, 'utf8')).toBeLessThanOrEqual(200);
    expect(row.filename).toMatch(/\.wav$/);
    expect(existsSync(path.join(gw.config.DATA_DIR, row.audio_key as string))).toBe(true);
  });

  it('serves an upload declared text/html as the audio it is: detected type, nosniff, inline only for audio', async () => {
    const wav = await submit(gw.url, fixture('goforward.wav'), {}, { contentType: 'text/html', filename: 'page.html' });
    expect(wav.status).toBe(202);
    const audio = await fetch(`${gw.url}/api/transcribe/jobs/audio/${String(wav.body.job_id)}`);
    expect(audio.status).toBe(200);
    expect(audio.headers.get('content-type')).toBe('audio/wav');
    expect(audio.headers.get('x-content-type-options')).toBe('nosniff');
    expect(audio.headers.get('content-disposition')).toMatch(/^inline; filename="?page\.html"?$/);
    await audio.arrayBuffer();

    const clip = path.join(dir, 'clip.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'color=c=blue:s=64x48:d=1', '-i', fixture('goforward.wav'), '-shortest', '-c:v', 'libx264', '-c:a', 'aac', clip]);
    const video = await submit(gw.url, clip, {}, { contentType: 'text/html' });
    expect(video.status).toBe(202);
    const served = await fetch(`${gw.url}/api/transcribe/jobs/audio/${String(video.body.job_id)}`);
    expect(served.headers.get('content-type')).toBe('video/mp4');
    expect(served.headers.get('x-content-type-options')).toBe('nosniff');
    expect(served.headers.get('content-disposition')).toMatch(/^attachment;/);
    await served.arrayBuffer();
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
