import type { LoggerService, LogLevel } from '@nestjs/common';
import os from 'node:os';
import pino from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';

/**
 * The gateway's logs: JSON lines on stdout, written by pino, one object per line:
 *
 *   {"level":"info","time":"2026-05-01T10:00:00.000Z","pid":7,"hostname":"worker-1",
 *    "context":"TranscriptionRunner","job_id":"…","engine":"whisper-rocm","msg":"job completed"}
 *
 * `level` is the level name, `time` ISO 8601 UTC, `context` the Nest logger context (the class
 * that logged), `err` a serialized error (`type`, `message`, `stack`) when one was logged. Secrets
 * are censored by {@link REDACT_PATHS} before a line is written.
 */

/** Accepted values of LOG_LEVEL, least to most verbose. */
export const LOG_LEVELS = ['silent', 'error', 'warn', 'info', 'debug'] as const;
export type GatewayLogLevel = (typeof LOG_LEVELS)[number];

/**
 * Fields censored in every log line (pino `redact` paths): credentials in logged request headers
 * and API keys in logged objects, at the top level or one object deep. Values become `[redacted]`.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'authorization',
  'api_key',
  'apiKey',
  '*.authorization',
  '*.api_key',
  '*.apiKey',
];

/**
 * LOG_LEVEL → pino level. Case-insensitive; unset or empty means `info`.
 *
 * @returns the level, and whether the given value was invalid (then `info` is used and the logger says so)
 */
export function parseLogLevel(value: string | undefined): { level: GatewayLogLevel; invalid: boolean } {
  const v = value?.trim().toLowerCase();
  if (!v) return { level: 'info', invalid: false };
  return (LOG_LEVELS as readonly string[]).includes(v) ? { level: v as GatewayLogLevel, invalid: false } : { level: 'info', invalid: true };
}

export interface CreateLoggerOptions {
  /** LOG_LEVEL value (silent, error, warn, info, debug); default `info`. */
  level?: string;
  /** Where lines go; default stdout. Tests pass a stream they read back. */
  destination?: DestinationStream;
  /** Fields on every line, e.g. `{ role: 'worker' }`. */
  base?: Record<string, unknown>;
}

/** Builds the root pino logger (JSON lines, ISO time, level names, redaction). */
export function createPinoLogger(options: CreateLoggerOptions = {}): PinoLogger {
  const { level, invalid } = parseLogLevel(options.level);
  const logger = pino(
    {
      level,
      base: { pid: process.pid, hostname: os.hostname(), ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names rather than pino's numbers: what log collectors and people filter on.
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
  if (invalid) logger.warn({ LOG_LEVEL: options.level }, `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}; using info`);
  return logger;
}

/** What {@link GatewayLogger.withJob} returns: a logger whose every line carries the job's fields. */
export interface JobLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** `err` (an Error) is serialized with its stack under `err`. */
  error(msg: string, err?: unknown, fields?: Record<string, unknown>): void;
}

/** Fields identifying a job on every line of its JobLogger. */
export interface JobLogFields {
  job_id: string;
  engine: string;
  /** Any further fields (transcript_id, attempt, chunk index…). */
  [field: string]: unknown;
}

/** Nest's levels mapped onto the gateway's: `verbose` logs as debug, `fatal` as pino's fatal. */
const NEST_TO_PINO = { log: 'info', error: 'error', warn: 'warn', debug: 'debug', verbose: 'debug', fatal: 'fatal' } as const;

/**
 * Nest `LoggerService` on pino: `app.useLogger(new GatewayLogger(createPinoLogger({ level: process.env.LOG_LEVEL })))`
 * (or the `logger` option of NestFactory.create) sends every Nest `Logger` call through it.
 *
 * Nest passes the context as the last string argument and, for `error`, a stack before it; an
 * object message becomes fields of the line, an Error message becomes `err`.
 */
export class GatewayLogger implements LoggerService {
  constructor(readonly pino: PinoLogger) {}

  log(message: unknown, ...optionalParams: unknown[]): void {
    this.write('log', message, optionalParams);
  }

  error(message: unknown, ...optionalParams: unknown[]): void {
    this.write('error', message, optionalParams);
  }

  warn(message: unknown, ...optionalParams: unknown[]): void {
    this.write('warn', message, optionalParams);
  }

  debug(message: unknown, ...optionalParams: unknown[]): void {
    this.write('debug', message, optionalParams);
  }

  verbose(message: unknown, ...optionalParams: unknown[]): void {
    this.write('verbose', message, optionalParams);
  }

  fatal(message: unknown, ...optionalParams: unknown[]): void {
    this.write('fatal', message, optionalParams);
  }

  /** Nest's `setLogLevels`: the most verbose level in the list becomes pino's level (none = silent). */
  setLogLevels(levels: LogLevel[]): void {
    const order = ['debug', 'info', 'warn', 'error'] as const;
    const mapped = new Set(levels.map((l) => NEST_TO_PINO[l]));
    this.pino.level = order.find((l) => mapped.has(l)) ?? (mapped.has('fatal') ? 'fatal' : 'silent');
  }

  /**
   * A logger for one job: every line carries `job_id` and `engine` (and any other given field),
   * so a job's lines can be found across API and worker processes.
   */
  withJob(fields: JobLogFields, context?: string): JobLogger {
    return jobLogger(this.pino.child(context ? { context, ...fields } : fields));
  }

  private write(nestLevel: keyof typeof NEST_TO_PINO, message: unknown, params: unknown[]): void {
    const level = NEST_TO_PINO[nestLevel];
    if (!this.pino.isLevelEnabled(level)) return;
    const rest = [...params];
    const fields: Record<string, unknown> = {};
    if (rest.length > 0 && typeof rest[rest.length - 1] === 'string') fields.context = rest.pop();
    // Nest's error(message, stack, context): a stack string before the context.
    if (nestLevel === 'error' && typeof rest[0] === 'string' && /\n\s+at /.test(rest[0])) fields.stack = rest.shift();
    for (const extra of rest) {
      if (extra instanceof Error) fields.err = extra;
      else if (extra && typeof extra === 'object') Object.assign(fields, extra);
    }
    if (message instanceof Error) {
      this.pino[level]({ ...fields, err: message }, message.message);
    } else if (message && typeof message === 'object') {
      this.pino[level]({ ...fields, ...(message as Record<string, unknown>) });
    } else {
      this.pino[level](fields, String(message));
    }
  }
}

/** Wraps a pino (child) logger as a JobLogger. */
export function jobLogger(logger: PinoLogger): JobLogger {
  return {
    debug: (msg, fields) => logger.debug(fields ?? {}, msg),
    info: (msg, fields) => logger.info(fields ?? {}, msg),
    warn: (msg, fields) => logger.warn(fields ?? {}, msg),
    error: (msg, err, fields) => logger.error(err === undefined ? (fields ?? {}) : { ...fields, err }, msg),
  };
}
