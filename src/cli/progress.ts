/**
 * Progress display of the CLI, fed by the job's SSE events. Rendering is pure (state in, string
 * out); ProgressReporter decides how to write it: a bar redrawn in place on a terminal, one line
 * per stage change otherwise (logs, CI, pipes), so redirected stderr stays readable.
 */

/** The part of a job status event (`GET /api/transcribe/jobs/stream/:job_id`) the display uses. */
export interface ProgressState {
  status: string;
  /** 0..100. */
  progress: number;
  /** queued | intake | splitting | transcribing | merging | saving | completed | failed. */
  stage: string;
  /** Pieces (chunks × channels) transcribed so far and in total, when the recording was split. */
  chunks_done?: number;
  chunks_total?: number;
  message?: string;
}

/** Where the reporter writes: `process.stderr` or a test double. */
export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  /** Terminal width in characters (TTY only; 0 or absent = 80). */
  columns?: number;
}

/** Progress clamped to 0..100 and rounded to a whole percent. */
export function percent(progress: number): number {
  return Number.isFinite(progress) ? Math.max(0, Math.min(100, Math.round(progress))) : 0;
}

/** `chunk 3 of 8`, or '' when the recording was not split. */
export function chunkLabel(state: ProgressState): string {
  if (state.chunks_total === undefined || state.chunks_total <= 0) return '';
  return `chunk ${Math.min(state.chunks_done ?? 0, state.chunks_total)} of ${state.chunks_total}`;
}

/**
 * One bar line: `transcribing  [███████░░░░░░░]  45%  chunk 3 of 8`. `width` is the whole line's
 * budget in characters; the bar takes what the text leaves (at least 10 cells).
 */
export function renderBar(state: ProgressState, width = 80): string {
  const pct = percent(state.progress);
  const stage = state.stage.padEnd(12);
  const chunks = chunkLabel(state);
  const tail = `${String(pct).padStart(3)}%${chunks ? `  ${chunks}` : ''}`;
  const cells = Math.max(10, Math.min(40, width - stage.length - tail.length - 6));
  const filled = Math.round((pct / 100) * cells);
  return `${stage} [${'█'.repeat(filled)}${'░'.repeat(cells - filled)}] ${tail}`;
}

/** One log line per stage change: `[ 45%] transcribing (chunk 3 of 8)`. */
export function renderStageLine(state: ProgressState): string {
  const chunks = chunkLabel(state);
  return `[${String(percent(state.progress)).padStart(3)}%] ${state.stage}${chunks ? ` (${chunks})` : ''}`;
}

/**
 * Writes progress to a terminal (bar redrawn in place with `\r` and erase-line) or, when the
 * output is not a TTY, a line each time the stage or status changes (chunk counts alone do not
 * produce lines, so a 300-chunk job logs a handful of lines, not hundreds).
 */
export class ProgressReporter {
  private lastKey: string | null = null;
  private drawn = false;

  constructor(private readonly out: ProgressOutput) {}

  update(state: ProgressState): void {
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${renderBar(state, this.out.columns || 80)}`);
      this.drawn = true;
      return;
    }
    const key = `${state.status}/${state.stage}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.out.write(`${renderStageLine(state)}\n`);
  }

  /** Ends the bar's line so later messages start on a fresh one. */
  finish(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
