import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { GatewayLogger, createPinoLogger, parseLogLevel } from '../../src/common/logger.js';

/** A pino destination that keeps every written line, parsed. */
function capture() {
  const raw: string[] = [];
  return {
    raw,
    stream: { write: (line: string) => void raw.push(line) },
    get lines(): Record<string, unknown>[] {
      return raw.map((l) => {
        expect(l.endsWith('\n')).toBe(true);
        expect(l.trimEnd()).not.toContain('\n'); // one JSON object per line
        return JSON.parse(l) as Record<string, unknown>;
      });
    },
  };
}

const SECRET = 'Bearer gw_live_9c1d2e3f4a5b6c7d8e9f';
const KEY = 'gw_key_0a1b2c3d4e5f';

describe('GatewayLogger (pino)', () => {
  it('writes JSON lines with level name, ISO time, message and Nest context', () => {
    const out = capture();
    const logger = new GatewayLogger(createPinoLogger({ destination: out.stream, base: { role: 'api' } }));
    logger.log('gateway listening', 'Bootstrap');
    logger.warn('engine whisper-rocm is unavailable', 'EngineHealthService');
    const [first, second] = out.lines;
    expect(first).toMatchObject({ level: 'info', msg: 'gateway listening', context: 'Bootstrap', role: 'api', pid: process.pid });
    expect(new Date(first.time as string).toISOString()).toBe(first.time);
    expect(second).toMatchObject({ level: 'warn', msg: 'engine whisper-rocm is unavailable', context: 'EngineHealthService' });
  });

  it('adds job_id and engine to every line of a job logger', () => {
    const out = capture();
    const logger = new GatewayLogger(createPinoLogger({ level: 'debug', destination: out.stream }));
    const job = logger.withJob({ job_id: '2f1c7a52-95c4-4d3e-9a57-0c2f6c0d9a11', engine: 'whisper-rocm' }, 'TranscriptionRunner');
    job.debug('chunk planned', { chunks: 3 });
    job.info('job completed', { audio_sec: 61.2 });
    job.warn('retrying', { attempt: 2 });
    job.error('job failed', new Error('ENGINE_TIMEOUT after 600 s'), { attempt: 3 });
    const lines = out.lines;
    expect(lines.map((l) => l.level)).toEqual(['debug', 'info', 'warn', 'error']);
    for (const line of lines) {
      expect(line).toMatchObject({ job_id: '2f1c7a52-95c4-4d3e-9a57-0c2f6c0d9a11', engine: 'whisper-rocm', context: 'TranscriptionRunner' });
    }
    expect(lines[0]).toMatchObject({ chunks: 3, msg: 'chunk planned' });
    expect(lines[1]).toMatchObject({ audio_sec: 61.2 });
    expect(lines[3]).toMatchObject({ attempt: 3, msg: 'job failed', err: { type: 'Error', message: 'ENGINE_TIMEOUT after 600 s' } });
    expect((lines[3].err as { stack: string }).stack).toMatch(/ENGINE_TIMEOUT after 600 s\n\s+at /);
  });

  it('never writes an authorization header or API key value', () => {
    const out = capture();
    const logger = new GatewayLogger(createPinoLogger({ destination: out.stream }));
    logger.log({ msg: 'request', req: { method: 'POST', url: '/api/transcribe/jobs/transcribe', headers: { authorization: SECRET, 'x-api-key': KEY, 'content-type': 'multipart/form-data' } } }, 'Http');
    logger.withJob({ job_id: 'j1', engine: 'riva', api_key: KEY }).info('submitted', { client: { apiKey: KEY, name: 'dictation-app' } });
    logger.warn({ headers: { authorization: SECRET }, api_key: KEY }, 'Auth');

    const text = out.raw.join('');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('gw_live_');
    expect(text).not.toContain(KEY);
    const [req, job, auth] = out.lines;
    expect(req).toMatchObject({ context: 'Http', req: { method: 'POST', headers: { authorization: '[redacted]', 'x-api-key': '[redacted]', 'content-type': 'multipart/form-data' } } });
    expect(job).toMatchObject({ job_id: 'j1', api_key: '[redacted]', client: { apiKey: '[redacted]', name: 'dictation-app' } });
    expect(auth).toMatchObject({ headers: { authorization: '[redacted]' }, api_key: '[redacted]' });
  });

  it('maps Nest error(message, stack, context) and Error messages to err/stack fields', () => {
    const out = capture();
    const logger = new GatewayLogger(createPinoLogger({ destination: out.stream }));
    const err = new Error('connection refused');
    logger.error('unhandled', err.stack, 'ApiErrorFilter');
    logger.error(err, 'Runner');
    const [withStack, fromError] = out.lines;
    expect(withStack).toMatchObject({ level: 'error', msg: 'unhandled', context: 'ApiErrorFilter' });
    expect(withStack.stack).toBe(err.stack);
    expect(fromError).toMatchObject({ level: 'error', msg: 'connection refused', context: 'Runner', err: { message: 'connection refused' } });
  });

  it('honours LOG_LEVEL: warn drops info and debug, silent drops everything', () => {
    const warnOut = capture();
    const warn = new GatewayLogger(createPinoLogger({ level: 'WARN', destination: warnOut.stream }));
    warn.debug('d');
    warn.log('i');
    warn.warn('w');
    warn.error('e');
    warn.withJob({ job_id: 'j', engine: 'e' }).info('job info');
    expect(warnOut.lines.map((l) => l.msg)).toEqual(['w', 'e']);

    const silentOut = capture();
    const silent = new GatewayLogger(createPinoLogger({ level: 'silent', destination: silentOut.stream }));
    silent.error('e');
    silent.withJob({ job_id: 'j', engine: 'e' }).error('job error');
    expect(silentOut.raw).toEqual([]);

    const defaultOut = capture();
    const byDefault = new GatewayLogger(createPinoLogger({ destination: defaultOut.stream }));
    byDefault.debug('d');
    byDefault.log('i');
    expect(defaultOut.lines.map((l) => l.msg)).toEqual(['i']);

    // Nest's setLogLevels: the most verbose listed level wins.
    byDefault.setLogLevels(['error', 'warn']);
    byDefault.log('dropped');
    byDefault.warn('kept');
    byDefault.setLogLevels(['verbose', 'error']);
    byDefault.debug('debug kept');
    expect(defaultOut.lines.map((l) => l.msg)).toEqual(['i', 'kept', 'debug kept']);
  });

  it('falls back to info on an invalid LOG_LEVEL and says so', () => {
    expect(parseLogLevel(undefined)).toEqual({ level: 'info', invalid: false });
    expect(parseLogLevel(' Debug ')).toEqual({ level: 'debug', invalid: false });
    expect(parseLogLevel('verbose')).toEqual({ level: 'info', invalid: true });
    const out = capture();
    createPinoLogger({ level: 'loud', destination: out.stream });
    expect(out.lines).toEqual([expect.objectContaining({ level: 'warn', LOG_LEVEL: 'loud', msg: expect.stringContaining('silent, error, warn, info, debug') })]);
  });

  it('receives the logs of Nest Logger instances once installed as the app logger', async () => {
    const out = capture();
    const moduleRef = await Test.createTestingModule({}).compile();
    const app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(new GatewayLogger(createPinoLogger({ destination: out.stream })));
    await app.init();
    try {
      new Logger('JobsService').log('job queued');
      new Logger('JobsService').error('job failed', 'Error: boom\n    at run (runner.ts:1:1)');
      const mine = out.lines.filter((l) => l.context === 'JobsService');
      expect(mine).toEqual([
        expect.objectContaining({ level: 'info', msg: 'job queued' }),
        expect.objectContaining({ level: 'error', msg: 'job failed', stack: 'Error: boom\n    at run (runner.ts:1:1)' }),
      ]);
      // Nest's own start-up lines came through pino too.
      expect(out.lines.some((l) => l.context === 'NestApplication' || l.context === 'InstanceLoader')).toBe(true);
    } finally {
      await app.close();
    }
  });
});
