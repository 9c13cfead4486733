import { writeFile } from 'node:fs/promises';
import { parseCliArgs, UsageError, type CliCommand } from './args.js';
import { ApiError, ConnectionError, GatewayClient, InputFileError, JobFailedError, type EnginesResponse } from './client.js';
import { ProgressReporter, type ProgressOutput } from './progress.js';

/**
 * The CLI's commands and its error → exit code policy, separate from main.ts so tests can run
 * them with their own streams and environment.
 */

/** Exit codes (documented in `--help` and docs/clients.md). */
export const EXIT = {
  OK: 0,
  /** The job ran and failed (or an unexpected error). */
  JOB_FAILED: 1,
  /** Bad command line, or FILE / --output cannot be read or written. */
  USAGE: 2,
  /** The gateway answered with an error status. */
  API_ERROR: 3,
  /** No answer from the gateway. */
  CONNECTION: 4,
} as const;

/** The process streams and environment the CLI runs with. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: ProgressOutput;
  env: Record<string, string | undefined>;
}

/** Filesystem errors (ENOENT, EACCES, EISDIR…) writing --output: the user's to fix, so a usage error. */
const isFsError = (err: unknown): err is NodeJS.ErrnoException =>
  err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';

/** Exit code for an error thrown by a command. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError || err instanceof InputFileError || isFsError(err)) return EXIT.USAGE;
  if (err instanceof JobFailedError) return EXIT.JOB_FAILED;
  if (err instanceof ApiError) return EXIT.API_ERROR;
  if (err instanceof ConnectionError) return EXIT.CONNECTION;
  return EXIT.JOB_FAILED;
}

/** What to do about a refused key: the gateway's own message names headers, not this CLI's options. */
const KEY_HINTS: Readonly<Record<number, string>> = {
  401: 'give the gateway\'s API key with --api-key KEY or the environment variable TRANSCRIBE_API_KEY',
  403: 'the key given with --api-key or TRANSCRIBE_API_KEY is not one of the gateway\'s API_KEYS',
};

/** The one-line message printed (to stderr, after `transcribe: `) for an error. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) {
    const hint = KEY_HINTS[err.status];
    return `${err.message}${hint ? `; ${hint}` : ''} (HTTP ${err.status}${err.code ? ` ${err.code}` : ''})`;
  }
  if (isFsError(err)) return `cannot write ${err.path ?? 'the output'}: ${err.code}`;
  return err instanceof Error ? err.message : String(err);
}

/** `transcribe engines` as a table: id (`*` marks the default), availability, diarization, models, languages. */
export function formatEngines(response: EnginesResponse): string {
  const rows = [['ENGINE', 'AVAILABLE', 'DIARIZATION', 'MODELS', 'LANGUAGES', 'NAME']];
  const notes: string[] = [];
  for (const [id, e] of Object.entries(response.engines)) {
    const list = (items: string[] | undefined) => (items && items.length > 0 ? (items.length > 4 ? `${items.slice(0, 4).join(',')},… (${items.length})` : items.join(',')) : '-');
    rows.push([`${id}${id === response.default_engine ? '*' : ''}`, e.available ? 'yes' : 'no', e.diarization ? 'yes' : 'no', list(e.models), list(e.languages), e.display_name]);
    if (!e.available && e.message) notes.push(`${id}: ${e.message}`);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd());
  return `${lines.join('\n')}\n* default engine\n${notes.map((n) => `${n}\n`).join('')}`;
}

/** Writes a transcript to --output or stdout (ending stdout output with a newline). */
async function emit(io: CliIo, text: string, output: string | undefined): Promise<void> {
  if (output) {
    await writeFile(output, text);
    io.stderr.write(`wrote ${output}\n`);
  } else {
    io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** Runs a parsed command. @throws UsageError, ApiError, ConnectionError, JobFailedError, fs errors. */
async function execute(command: Exclude<CliCommand, { kind: 'help' }>, io: CliIo): Promise<void> {
  const client = new GatewayClient({ baseUrl: command.connection.url, ...(command.connection.apiKey ? { apiKey: command.connection.apiKey } : {}) });
  switch (command.kind) {
    case 'engines': {
      const engines = await client.engines();
      io.stdout.write(command.json ? `${JSON.stringify(engines, null, 2)}\n` : formatEngines(engines));
      return;
    }
    case 'status':
      io.stdout.write(`${JSON.stringify(await client.status(command.jobId), null, 2)}\n`);
      return;
    case 'result':
      await emit(io, await client.result(command.jobId, command.format), command.output);
      return;
    case 'transcribe': {
      const submitted = await client.submit(command.request);
      if (!command.wait) {
        io.stdout.write(`${JSON.stringify(submitted, null, 2)}\n`);
        return;
      }
      io.stderr.write(`job ${submitted.job_id} queued on ${submitted.engine}\n`);
      const progress = new ProgressReporter(io.stderr);
      let last;
      try {
        last = await client.follow(submitted.job_id, (event) => progress.update(event));
      } finally {
        progress.finish();
      }
      if (last.status === 'failed' || last.status === 'cancelled') throw new JobFailedError(submitted.job_id, last);
      await emit(io, await client.result(submitted.job_id, command.format), command.output);
      return;
    }
    default: {
      const unreachable: never = command;
      throw new Error(`unhandled command ${JSON.stringify(unreachable)}`);
    }
  }
}

/**
 * Runs the CLI with `argv` (without node and the script) and returns the exit code; every
 * error becomes one `transcribe: …` line on stderr.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  try {
    const command = parseCliArgs(argv, io.env);
    if (command.kind === 'help') {
      io.stdout.write(command.text);
      return EXIT.OK;
    }
    await execute(command, io);
    return EXIT.OK;
  } catch (err) {
    io.stderr.write(`transcribe: ${errorMessage(err)}\n`);
    if (err instanceof UsageError) io.stderr.write("Run 'transcribe --help' for usage.\n");
    return exitCodeFor(err);
  }
}
