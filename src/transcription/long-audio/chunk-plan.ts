import type { Silence } from '../../audio/silences.js';

/** One planned chunk of a long recording. All values in seconds from the start of the recording. */
export interface PlannedChunk {
  index: number;
  /** Where the chunk's audio starts (its offset: add it to every time the engine returns). */
  start: number;
  /** Where the chunk's audio ends. */
  end: number;
  /**
   * The core: the part of the recording this chunk is responsible for. Cores tile the recording
   * without gaps or overlap; audio outside the core (overlap after a blind cut) only gives the
   * engine context. A word belongs to the chunk whose core holds the word's midpoint.
   */
  core_start: number;
  core_end: number;
  /** How the chunk's end was chosen: inside a pause, blindly (no pause near the target), or the recording's end. */
  cut: 'silence' | 'blind' | 'end';
}

export interface ChunkPlanOptions {
  /** Target chunk length, seconds. */
  target: number;
  /** Cut inside a pause within ±tolerance × target of the target point (default 0.2). */
  tolerance?: number;
  /** Shortest pause worth cutting in, seconds (default 0.3). */
  minPause?: number;
  /** Overlap added on both sides of a blind cut so a word cut in half is heard whole by one chunk (default 1 s). */
  blindOverlap?: number;
}

/**
 * Plans where to cut a recording of `duration` seconds into chunks of about `target` seconds,
 * cutting in the middle of the pause nearest each target point. Only when no pause of at least
 * `minPause` lies within ±tolerance of the target is the cut blind (at the target point, with
 * overlap on both sides). The last chunk absorbs a remainder shorter than `target × (1 + tolerance)`.
 */
export function planChunks(duration: number, silences: Silence[], options: ChunkPlanOptions): PlannedChunk[] {
  const tolerance = options.tolerance ?? 0.2;
  const minPause = options.minPause ?? 0.3;
  const overlap = options.blindOverlap ?? 1;
  const target = options.target;
  if (!(target > 0)) throw new Error('chunk target length must be positive');
  const pauses = silences.filter((s) => s.end - s.start >= minPause).sort((a, b) => a.start - b.start);

  const cuts: { at: number; cut: 'silence' | 'blind' }[] = [];
  let position = 0;
  while (duration - position > target * (1 + tolerance)) {
    const wanted = position + target;
    const low = position + target * (1 - tolerance);
    const high = position + target * (1 + tolerance);
    let best: number | null = null;
    for (const pause of pauses) {
      // Cut inside the part of the pause that lies in the window, as near the middle of the pause as possible.
      const from = Math.max(pause.start, low);
      const to = Math.min(pause.end, high);
      if (to - from <= 0 || pause.end - pause.start < minPause) continue;
      const middle = Math.min(Math.max((pause.start + pause.end) / 2, from), to);
      if (best === null || Math.abs(middle - wanted) < Math.abs(best - wanted)) best = middle;
    }
    const at = best ?? wanted;
    cuts.push({ at, cut: best === null ? 'blind' : 'silence' });
    position = at;
  }

  const chunks: PlannedChunk[] = [];
  let coreStart = 0;
  for (let i = 0; i <= cuts.length; i++) {
    const coreEnd = i < cuts.length ? cuts[i].at : duration;
    const blindBefore = i > 0 && cuts[i - 1].cut === 'blind';
    const blindAfter = i < cuts.length && cuts[i].cut === 'blind';
    chunks.push({
      index: i,
      start: round(Math.max(0, coreStart - (blindBefore ? overlap : 0))),
      end: round(Math.min(duration, coreEnd + (blindAfter ? overlap : 0))),
      core_start: round(coreStart),
      core_end: round(coreEnd),
      cut: i < cuts.length ? cuts[i].cut : 'end',
    });
    coreStart = coreEnd;
  }
  return chunks;
}

const round = (x: number) => Math.round(x * 1000) / 1000;
