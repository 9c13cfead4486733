import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';

/** Outcome of a finished child process. */
export interface ProcessResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** The last `stderrLimit` bytes of stderr (tools like ffmpeg are chatty; only the tail explains a failure). */
  stderr: string;
}

/** Raised when the binary cannot be started at all (ENOENT, EACCES). */
export class ProcessStartError extends Error {
  constructor(
    readonly command: string,
    readonly errno: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(`cannot start '${command}'${errno ? ` (${errno})` : ''}`, options);
    this.name = 'ProcessStartError';
  }
}

/**
 * Runs a command without a shell and collects its output.
 *
 * @param options.signal kills the child (SIGKILL) when aborted; the promise then rejects with the abort reason.
 * @param options.onStdoutLine called for every complete stdout line as it arrives (for live progress).
 * @param options.stderrLimit bytes of stderr kept (tail), default 16 KiB.
 * @throws ProcessStartError when the binary is missing or not executable; the abort reason when aborted.
 *   A non-zero exit is **not** an error here: callers map exit codes to their own errors.
 */
export function runProcess(
  command: string,
  args: string[],
  options: { signal?: AbortSignal; onStdoutLine?: (line: string) => void; stderrLimit?: number; stdoutLimit?: number } = {},
): Promise<ProcessResult> {
  const stderrLimit = options.stderrLimit ?? 16 * 1024;
  const stdoutLimit = options.stdoutLimit ?? 256 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(abortReason(options.signal));
      return;
    }
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdoutChunks: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = '';
    let pending = '';
    let settled = false;
    const onAbort = () => child.kill('SIGKILL');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes <= stdoutLimit) stdoutChunks.push(chunk);
      if (options.onStdoutLine) {
        pending += chunk.toString('utf8');
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          options.onStdoutLine(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (stderr.length > stderrLimit * 2) stderr = stderr.slice(-stderrLimit);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      reject(new ProcessStartError(command, err.code, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) {
        reject(abortReason(options.signal));
        return;
      }
      if (options.onStdoutLine && pending) options.onStdoutLine(pending);
      resolve({ code, signal, stdout: Buffer.concat(stdoutChunks).toString('utf8'), stderr: stderr.slice(-stderrLimit) });
    });
  });
}

/** Resolves a command name against PATH (or checks an explicit path); null when not executable. */
export async function resolveExecutable(command: string): Promise<string | null> {
  const candidates = command.includes('/')
    ? [command]
    : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, command));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next PATH entry
    }
  }
  return null;
}

/** The reason an AbortSignal was aborted with, as an Error (AbortSignal.abort() gives a DOMException, which is one). */
function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(typeof reason === 'string' ? reason : 'aborted', { cause: reason });
}
