import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_URL, HELP, parseCliArgs, UsageError } from '../../src/cli/args.js';
import { ApiError, apiErrorMessage, buildSubmitForm, ConnectionError, contentTypeFor, describeNetworkError, InputFileError, JobFailedError, type JobStatusEvent } from '../../src/cli/client.js';
import { chunkLabel, percent, ProgressReporter, renderBar, renderStageLine } from '../../src/cli/progress.js';
import { errorMessage, EXIT, exitCodeFor, formatEngines, runCli } from '../../src/cli/run.js';
import { SseDecoder } from '../../src/cli/sse.js';

const usage = (argv: string[], env: Record<string, string> = {}) => {
  try {
    parseCliArgs(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`no usage error for ${argv.join(' ')}`);
};

describe('CLI argument parsing', () => {
  it('turns transcribe options into the API form fields, sending only what was given', () => {
    const cmd = parseCliArgs(
      ['talk.wav', '--engine', 'whisperx', '-l', 'en-US', '--model', 'large-v3', '--diarize', '--min-speakers', '2', '--max-speakers', '03', '--multichannel', '--speaker-roles', 'first_speaker', '--role-names', 'agent,caller', '--role-keywords', '{"agent":["help"]}', '--prompt', 'Acme', '--callback-url', 'https://hooks.example.org/t', '--format', 'SRT'],
      {},
    );
    expect(cmd).toEqual({
      kind: 'transcribe',
      connection: { url: DEFAULT_URL },
      request: {
        source: { file: 'talk.wav' },
        fields: { engine: 'whisperx', language: 'en-US', model: 'large-v3', enable_diarization: 'true', min_speakers: '2', max_speakers: '3', multichannel: 'true', speaker_roles: 'first_speaker', speaker_role_names: 'agent,caller', speaker_role_keywords: '{"agent":["help"]}', prompt: 'Acme', callback_url: 'https://hooks.example.org/t' },
      },
      format: 'srt',
      wait: true,
    });
    expect(parseCliArgs(['talk.wav'])).toMatchObject({ request: { fields: {} }, format: 'txt' });
  });

  it('asks for a translation with --translate (task=translate), and for nothing without it', () => {
    expect(parseCliArgs(['talk.wav', '--translate', '-e', 'whisperx', '-l', 'de'])).toMatchObject({ request: { fields: { task: 'translate', engine: 'whisperx', language: 'de' } } });
    expect((parseCliArgs(['talk.wav']) as { request: { fields: Record<string, string> } }).request.fields.task).toBeUndefined();
    expect(usage(['talk.wav', '--no-translate'])).toMatch(/unknown option '--no-translate'/);
    expect(usage(['engines', '--translate'])).toMatch(/--translate does not apply to 'engines'/);
  });

  it('sends enable_diarization=false for --no-diarize and honours --no-wait', () => {
    expect(parseCliArgs(['a.mp3', '--no-diarize', '--no-wait'])).toMatchObject({ request: { fields: { enable_diarization: 'false' } }, wait: false });
  });

  it('submits a URL (positional or --audio-url) as audio_url', () => {
    expect(parseCliArgs(['https://example.org/call.mp3'])).toMatchObject({ request: { source: { audioUrl: 'https://example.org/call.mp3' } } });
    expect(parseCliArgs(['--audio-url', 'http://host/a.wav', '-e', 'riva'])).toMatchObject({ request: { source: { audioUrl: 'http://host/a.wav' }, fields: { engine: 'riva' } } });
    expect(usage(['a.wav', '--audio-url', 'http://host/a.wav'])).toMatch(/either FILE or --audio-url/);
    expect(usage(['--audio-url', 'ftp://host/a.wav'])).toMatch(/--audio-url must be an http/);
  });

  it('takes the URL and key from flags, then TRANSCRIBE_URL / TRANSCRIBE_API_KEY, then the default', () => {
    const env = { TRANSCRIBE_URL: 'https://gw.example.org/', TRANSCRIBE_API_KEY: 'env-key' };
    expect(parseCliArgs(['engines'], env)).toEqual({ kind: 'engines', connection: { url: 'https://gw.example.org', apiKey: 'env-key' }, json: false });
    expect(parseCliArgs(['engines', '--url', 'http://10.0.0.5:8000', '-k', 'flag-key', '--json'], env)).toEqual({ kind: 'engines', connection: { url: 'http://10.0.0.5:8000', apiKey: 'flag-key' }, json: true });
    expect(parseCliArgs(['status', 'abc'])).toEqual({ kind: 'status', connection: { url: DEFAULT_URL }, jobId: 'abc' });
    expect(usage(['engines'], { TRANSCRIBE_URL: 'localhost:8000' })).toMatch(/TRANSCRIBE_URL must be an http/);
    expect(usage(['engines', '--url', 'ftp://x'])).toMatch(/--url must be an http/);
  });

  it('picks the format from --format, else from the --output extension, else txt', () => {
    expect(parseCliArgs(['result', 'id', '-o', 'out.vtt'])).toMatchObject({ kind: 'result', jobId: 'id', format: 'vtt', output: 'out.vtt' });
    expect(parseCliArgs(['result', 'id', '-o', 'out.vtt', '-f', 'json'])).toMatchObject({ format: 'json' });
    expect(parseCliArgs(['result', 'id', '-o', 'notes.md'])).toMatchObject({ format: 'txt' });
    expect(usage(['result', 'id', '--format', 'docx'])).toBe("--format must be one of json, txt, srt, vtt, got 'docx'");
  });

  it('rejects bad command lines with a message that says what is wrong', () => {
    expect(usage([])).toMatch(/missing FILE or command/);
    expect(usage(['a.wav', '--bogus'])).toBe("Unknown option '--bogus'");
    expect(usage(['a.wav', '--engine'])).toMatch(/--engine <value>' argument missing/);
    expect(usage(['a.wav', 'b.wav'])).toMatch(/one FILE at a time/);
    expect(usage(['status'])).toMatch(/'status' takes one JOB_ID/);
    expect(usage(['status', 'a', 'b'])).toMatch(/'status' takes one JOB_ID/);
    expect(usage(['engines', 'extra'])).toMatch(/'engines' takes no arguments/);
    expect(usage(['status', 'id', '--format', 'srt'])).toBe("--format does not apply to 'status'");
    expect(usage(['engines', '--engine', 'x'])).toBe("--engine does not apply to 'engines'");
    expect(usage(['a.wav', '--no-multichannel'])).toBe("unknown option '--no-multichannel'");
    expect(usage(['a.wav', '--wait'])).toMatch(/--no-wait/);
    expect(usage(['a.wav', '--min-speakers', '0'])).toMatch(/--min-speakers must be an integer between 1 and 20/);
    expect(usage(['a.wav', '--max-speakers', '2.5'])).toMatch(/--max-speakers must be an integer/);
    expect(usage(['a.wav', '--min-speakers', '4', '--max-speakers', '2'])).toMatch(/larger than --max-speakers/);
    expect(usage(['a.wav', '--speaker-roles', 'doctor'])).toMatch(/--speaker-roles must be one of none, first_speaker, keywords/);
  });

  it('answers --help with the usage text, whatever else is on the line', () => {
    expect(parseCliArgs(['--help'])).toEqual({ kind: 'help', text: HELP });
    expect(parseCliArgs(['status', '-h'])).toEqual({ kind: 'help', text: HELP });
    expect(HELP).toMatch(/Exit codes: 0 done; 1 the job failed; 2 usage error/);
  });
});

describe('CLI submission form', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-unit-'));

  it('streams a file as the `file` part with its name and an audio content type, fields first', async () => {
    const file = path.join(dir, 'Meeting Notes.WAV');
    writeFileSync(file, Buffer.alloc(4096, 1));
    const form = await buildSubmitForm({ source: { file }, fields: { engine: 'pocketsphinx', language: 'en' } });
    expect([...form.keys()]).toEqual(['engine', 'language', 'file']);
    const part = form.get('file') as File;
    expect(part.name).toBe('Meeting Notes.WAV');
    expect(part.type).toBe('audio/wav');
    expect(part.size).toBe(4096);
    expect(Buffer.from(await part.arrayBuffer()).equals(Buffer.alloc(4096, 1))).toBe(true);
  });

  it('sends audio_url instead of a file', async () => {
    const form = await buildSubmitForm({ source: { audioUrl: 'https://example.org/a.mp3' }, fields: {} });
    expect([...form.entries()]).toEqual([['audio_url', 'https://example.org/a.mp3']]);
  });

  it('says why a file cannot be read', async () => {
    await expect(buildSubmitForm({ source: { file: path.join(dir, 'missing.wav') }, fields: {} })).rejects.toThrow(new InputFileError(path.join(dir, 'missing.wav'), 'no such file'));
    await expect(buildSubmitForm({ source: { file: dir }, fields: {} })).rejects.toThrow(/not a regular file/);
  });

  it('maps extensions to content types, octet-stream when unknown', () => {
    expect(contentTypeFor('x.MP3')).toBe('audio/mpeg');
    expect(contentTypeFor('clip.mp4')).toBe('video/mp4');
    expect(contentTypeFor('noext')).toBe('application/octet-stream');
  });
});

describe('CLI SSE decoding', () => {
  const stream = 'id: 1\ndata: {"status":"queued"}\n\n: keep-alive\n\ndata: {"a":1,\ndata: "b":2}\n\nevent: ping\n\nevent: done\r\nid: 7\r\ndata: x\r\n\r\ndata: tail';

  it('decodes events, joining data lines, skipping comments and data-less events', () => {
    const messages = new SseDecoder().feed(stream);
    expect(messages).toEqual([
      { event: 'message', data: '{"status":"queued"}', id: '1' },
      { event: 'message', data: '{"a":1,\n"b":2}', id: '1' },
      { event: 'done', data: 'x', id: '7' },
    ]);
  });

  it('gives the same events however the text is split (CRLF across chunks included)', () => {
    const whole = new SseDecoder().feed(stream);
    for (const size of [1, 2, 3, 7]) {
      const decoder = new SseDecoder();
      const got = [];
      for (let i = 0; i < stream.length; i += size) got.push(...decoder.feed(stream.slice(i, i + size)));
      expect(got).toEqual(whole);
    }
    const decoder = new SseDecoder();
    expect(decoder.feed('data: a\r')).toEqual([]);
    expect(decoder.feed('\n\r')).toEqual([]);
    expect(decoder.feed('\n')).toEqual([{ event: 'message', data: 'a' }]);
  });

  it('treats a lone CR as a line end and a field without a colon as empty', () => {
    expect(new SseDecoder().feed('data\rdata: b\r\r\n')).toEqual([{ event: 'message', data: '\nb' }]);
  });
});

describe('CLI progress display', () => {
  const state = { status: 'processing', stage: 'transcribing', progress: 45.4, chunks_done: 3, chunks_total: 8 };

  it('renders a bar with stage, percent and chunk count within the width', () => {
    const line = renderBar(state, 80);
    expect(line).toMatch(/^transcribing +\[█+░+\] {2}45% {2}chunk 3 of 8$/);
    expect(line.length).toBeLessThanOrEqual(80);
    const bar = /\[(█*)(░*)\]/.exec(line)!;
    expect(bar[1].length / (bar[1].length + bar[2].length)).toBeCloseTo(0.45, 1);
    expect(renderBar({ status: 'completed', stage: 'completed', progress: 100 }, 60)).toMatch(/\[█+\] 100%$/);
    expect(renderBar({ status: 'queued', stage: 'queued', progress: 0 }, 20)).toContain(`[${'░'.repeat(10)}]`);
  });

  it('clamps percentages and labels chunks only when the job was split', () => {
    expect([percent(-3), percent(100.6), percent(Number.NaN), percent(49.5)]).toEqual([0, 100, 0, 50]);
    expect(chunkLabel({ status: 'processing', stage: 'intake', progress: 2 })).toBe('');
    expect(chunkLabel({ ...state, chunks_done: 9 })).toBe('chunk 8 of 8');
    expect(renderStageLine(state)).toBe('[ 45%] transcribing (chunk 3 of 8)');
  });

  it('redraws in place on a TTY and ends the line on finish', () => {
    const written: string[] = [];
    const reporter = new ProgressReporter({ isTTY: true, columns: 60, write: (t: string) => written.push(t) });
    reporter.update({ ...state, progress: 10 });
    reporter.update({ ...state, progress: 20 });
    reporter.finish();
    expect(written).toHaveLength(3);
    const ESC = String.fromCharCode(0x1b);
    expect(written[0].startsWith(`\r${ESC}[2K`)).toBe(true);
    expect(written[0]).toMatch(/transcribing .* 10%/);
    expect(written[1].startsWith(`\r${ESC}[2K`)).toBe(true);
    expect(written[1]).toMatch(/ 20%/);
    expect(written[2]).toBe('\n');
  });

  it('writes one line per stage or status change when not a TTY', () => {
    const written: string[] = [];
    const reporter = new ProgressReporter({ write: (t: string) => written.push(t) });
    const events = [
      { status: 'queued', stage: 'queued', progress: 0 },
      { status: 'processing', stage: 'intake', progress: 2 },
      { status: 'processing', stage: 'transcribing', progress: 10, chunks_done: 0, chunks_total: 3 },
      { status: 'processing', stage: 'transcribing', progress: 37, chunks_done: 1, chunks_total: 3 },
      { status: 'processing', stage: 'transcribing', progress: 63, chunks_done: 2, chunks_total: 3 },
      { status: 'completed', stage: 'completed', progress: 100 },
    ];
    for (const e of events) reporter.update(e);
    reporter.finish();
    expect(written).toEqual(['[  0%] queued\n', '[  2%] intake\n', '[ 10%] transcribing (chunk 0 of 3)\n', '[100%] completed\n']);
  });
});

describe('CLI errors and exit codes', () => {
  const failed: JobStatusEvent = { job_id: 'j1', status: 'failed', progress: 10, stage: 'failed', engine: 'riva', message: 'failed', error: { code: 'ENGINE_REJECTED', message: 'model not loaded' } };

  it('maps each error kind to its exit code', () => {
    expect(EXIT).toEqual({ OK: 0, JOB_FAILED: 1, USAGE: 2, API_ERROR: 3, CONNECTION: 4 });
    expect(exitCodeFor(new UsageError('x'))).toBe(2);
    expect(exitCodeFor(new InputFileError('a.wav', 'no such file'))).toBe(2);
    expect(exitCodeFor(Object.assign(new Error('EACCES'), { code: 'EACCES', syscall: 'open', path: '/out.srt' }))).toBe(2);
    expect(exitCodeFor(new JobFailedError('j1', failed))).toBe(1);
    expect(exitCodeFor(new ApiError(404, 'JOB_NOT_FOUND', 'job not found'))).toBe(3);
    expect(exitCodeFor(new ConnectionError('http://h:1', 'ECONNREFUSED'))).toBe(4);
    expect(exitCodeFor(new Error('unexpected'))).toBe(1);
  });

  it('prints the API message with status and code, and the job error for a failed job', () => {
    expect(errorMessage(new ApiError(409, 'JOB_NOT_COMPLETED', 'job is still processing'))).toBe('job is still processing (HTTP 409 JOB_NOT_COMPLETED)');
    expect(errorMessage(new JobFailedError('j1', failed))).toBe('job j1 failed: model not loaded (ENGINE_REJECTED)');
    expect(errorMessage(new ConnectionError('http://h:1', 'ECONNREFUSED'))).toBe('cannot connect to http://h:1 (ECONNREFUSED)');
    expect(errorMessage(Object.assign(new Error('x'), { code: 'ENOENT', syscall: 'open', path: '/no/dir/out.srt' }))).toBe('cannot write /no/dir/out.srt: ENOENT');
  });

  it("reads the API's message from JSON error bodies (string or list), else the text", () => {
    expect(apiErrorMessage(400, JSON.stringify({ statusCode: 400, code: 'VALIDATION_FAILED', message: ['a is bad', 'b is bad'] }))).toEqual({ code: 'VALIDATION_FAILED', message: 'a is bad; b is bad' });
    expect(apiErrorMessage(404, JSON.stringify({ code: 'JOB_NOT_FOUND', message: 'no such job' }))).toEqual({ code: 'JOB_NOT_FOUND', message: 'no such job' });
    expect(apiErrorMessage(502, '<html>\n <b>Bad   gateway</b></html>')).toEqual({ code: null, message: 'HTTP 502: <html> <b>Bad gateway</b></html>' });
    expect(apiErrorMessage(503, '')).toEqual({ code: null, message: 'HTTP 503' });
  });

  it("names the socket error fetch wraps as its cause", () => {
    expect(describeNetworkError(Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }))).toBe('ECONNREFUSED');
    expect(describeNetworkError(Object.assign(new TypeError('fetch failed'), { cause: new Error('bad port') }))).toBe('bad port');
    expect(describeNetworkError(new TypeError('terminated'))).toBe('terminated');
  });

  it('runs help and usage errors without touching the network', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) }, env: {} };
    expect(await runCli(['--help'], io)).toBe(0);
    expect(out.join('')).toBe(HELP);
    expect(await runCli(['status'], io)).toBe(2);
    expect(err.join('')).toBe("transcribe: 'status' takes one JOB_ID (the job_id a submission printed)\nRun 'transcribe --help' for usage.\n");
  });
});

describe('CLI engines table', () => {
  it('lists engines with the default marked and why unavailable ones are down', () => {
    const text = formatEngines({
      default_engine: 'pocketsphinx',
      engines: {
        pocketsphinx: { engine: 'pocketsphinx', display_name: 'CMU pocketsphinx', available: true, message: null, diarization: false, languages: ['en-US'], models: ['en-us'] },
        whisperx: { engine: 'whisperx', display_name: 'WhisperX', available: false, message: 'connect ECONNREFUSED', diarization: true, languages: ['en', 'de', 'fr', 'es', 'it'], models: ['large-v3'] },
      },
    });
    expect(text.split('\n')).toEqual([
      'ENGINE         AVAILABLE  DIARIZATION  MODELS    LANGUAGES          NAME',
      'pocketsphinx*  yes        no           en-us     en-US              CMU pocketsphinx',
      'whisperx       no         yes          large-v3  en,de,fr,es,… (5)  WhisperX',
      '* default engine',
      'whisperx: connect ECONNREFUSED',
      '',
    ]);
  });
});
