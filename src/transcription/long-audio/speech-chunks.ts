/**
 * Speech-only chunk packing: plans which parts of a recording go to which engine call when a VAD
 * (voice activity detection) has found where the speech is.
 *
 * Non-speech between VAD regions is never sent. A chunk is a list of spans of the recording laid
 * end to end, with `gapSec` of digital silence between consecutive spans (so engines still hear
 * a sentence boundary). Each chunk carries its own time map (chunk time → recording time, see
 * time-map.ts) and a core (the part of the recording whose words it keeps when results are
 * merged, as in merge.ts).
 *
 * Units: the API takes and returns float seconds; internally every time is an integer number of
 * milliseconds, so every returned time is a multiple of 1 ms (16 samples at 16 kHz) and chunk
 * audio can be cut and concatenated sample-exactly.
 *
 * ## Algorithm
 *
 * 1. Regions are clamped to [0, duration], sorted, and merged where they overlap or where the
 *    pause between them is no longer than `gapSec` (the real pause is kept: it is no longer than
 *    the silence that would replace it).
 * 2. Pieces: a region whose audio does not fit one chunk (longer than `maxChunkSec`) is split
 *    evenly into the fewest pieces that fit, counting `overlapSec` of extra audio on each side of
 *    each mid-speech cut. Every other region is one piece. A cut moves to the nearest short pause
 *    that step 1 merged into the region (within a quarter of a piece, while every piece still
 *    fits), so that it falls between words: VAD padding shrinks the pauses between sentences of
 *    fluent speech below `gapSec`, and a long stretch of talk is mostly such pauses apart.
 * 3. Chunk count N = max(min(capacity, floor(speech / minChunkSec)), fewest chunks the pieces fit
 *    into), at least 1: every engine replica works at once when there is enough speech (chunks of
 *    at least `minChunkSec`, default 10 s, are worth a call of their own), and no chunk is too
 *    long. When more than `capacity` chunks are needed anyway, a count rounded up to a multiple of
 *    `capacity` (every round of calls full, each chunk shorter; capped by floor(speech /
 *    minChunkSec) and by the number of pieces) is tried first.
 * 4. Partition: the pieces, in recording order, are split into exactly N contiguous groups by an
 *    exact dynamic program over (pieces consumed, groups formed) that keeps, per state, every
 *    non-dominated (shortest chunk, longest chunk, mid-speech cuts) triple. It returns:
 *    - when some partition has longest ≤ `maxRatio` × shortest: among those, the one with the
 *      fewest mid-speech cuts, then the shortest longest chunk, then the longest shortest one;
 *    - otherwise the one with the shortest longest chunk (wall time), then fewest cuts, then the
 *      longest shortest chunk.
 *    The first balanced plan (rounded count, then N) is the answer. Searches too large for the
 *    exact program (a step budget, reached only with hundreds of chunks and a capacity in the
 *    hundreds) use a scalar one instead: fewest cuts, then the least sum of squared deviations
 *    from the mean chunk length.
 * 5. When no count gave a balanced plan, or there are fewer pieces than N (one long monologue and
 *    several replicas), regions longer than the target chunk length T = speech / N are divided
 *    into a grid of candidate cut points (every ~T/4, at least 1 s and 2 × overlap apart; each
 *    moved to a merged pause nearby, as in step 2) and step 4 runs again, with N, on that finer grid. Its plan is used when it is balanced, or when
 *    step 4 had no plan at all; otherwise the step-4 plan with the lower longest/shortest ratio
 *    stays: mid-speech cuts are not made only to shave a little off an unbalanced plan.
 *
 * ## Guarantees
 *
 * - Every chunk's audio (spans + gaps + overlaps) is ≤ `maxChunkSec`.
 * - Chunks and their spans are in recording order; regions are never reordered; every
 *   millisecond of (merged) speech lies in exactly one span core; span cores never overlap.
 * - Whenever the regions (with only the mandatory splits of step 2) can be partitioned into N
 *   chunks with longest ≤ `maxRatio` × shortest, the plan meets that bound (step 4 is exact
 *   within its step budget, which realistic capacities stay far below).
 * - Mid-speech cuts only where a region does not fit a chunk, or where the regions alone allow
 *   no balanced plan / too few chunks. Each cut carries `overlapSec` of audio on both sides, so a
 *   word up to 2 × `overlapSec` long that straddles the cut is heard whole by the chunk whose
 *   core holds its midpoint.
 * - No speech → no chunks.
 *
 * Cost: O(pieces × window × (chunk-count slack) × frontier size); the frontiers stay small (a
 * handful of entries), so two hours of speech in 1,600 VAD regions plans in tens of milliseconds.
 */

/** A stretch of speech found by the VAD (src/audio/vad.ts), in seconds from the start of the recording. */
export type { SpeechRegion } from '../../audio/vad.js';
import type { SpeechRegion } from '../../audio/vad.js';

export interface SpeechChunkOptions {
  /** Longest audio (seconds) one engine call takes, e.g. 30 for Whisper's window; > 0. */
  maxChunkSec: number;
  /** Engine calls that can run at once (replicas); integer ≥ 1. */
  capacity: number;
  /** Digital silence (seconds) laid between consecutive spans of one chunk; ≥ 0 and < maxChunkSec. */
  gapSec: number;
  /** Shortest chunk worth a call of its own when splitting for parallelism, seconds (default 10). */
  minChunkSec?: number;
  /** Audio added on each side of a mid-speech cut, seconds (default 1; at most maxChunkSec / 4). */
  overlapSec?: number;
  /** Balance target: longest chunk ≤ maxRatio × shortest (default 1.5; ≥ 1). */
  maxRatio?: number;
}

/** One span of recording audio inside a chunk. Seconds. */
export interface ChunkSpan {
  /** Where the span's audio starts in the recording (cut from here). */
  start: number;
  /** Where the span's audio ends in the recording. */
  end: number;
  /**
   * The part of the recording this span is responsible for: equal to [start, end] except at a
   * mid-speech cut, where the overlap heard only for context is left out. Cores of all spans of
   * all chunks tile the speech exactly once.
   */
  core_start: number;
  core_end: number;
  /** Where the span's audio starts in the chunk's audio (chunk time). */
  offset: number;
  /** True when the span starts at a mid-speech cut (the previous chunk holds the speech before it). */
  cut_before: boolean;
  /** True when the span ends at a mid-speech cut (the next chunk holds the speech after it). */
  cut_after: boolean;
}

/**
 * One engine call: its audio is `spans[0]`, `gap_sec` of silence, `spans[1]`, … in that order.
 * Plain data (JSON-safe) so it can travel in a job payload.
 */
export interface SpeechChunk {
  index: number;
  spans: ChunkSpan[];
  /** Silence between consecutive spans, seconds. */
  gap_sec: number;
  /** Length of the chunk's audio (spans + gaps), seconds; ≤ maxChunkSec. */
  duration_sec: number;
  /** Speech this chunk is responsible for (sum of span cores), seconds. */
  speech_sec: number;
  /**
   * The part of the recording whose words this chunk keeps at the merge (a word belongs to the
   * chunk whose core holds its midpoint). Chunk cores tile [0, duration]: the boundary between
   * two chunks is the mid-speech cut point, or the middle of the non-speech between them.
   */
  core_start: number;
  core_end: number;
}

const DEFAULT_MIN_CHUNK_SEC = 10;
const DEFAULT_OVERLAP_SEC = 1;
const DEFAULT_MAX_RATIO = 1.5;
/** Finest grid of candidate mid-speech cut points (step 5), ms. */
const MIN_GRID_MS = 1000;

const ms = (sec: number) => Math.round(sec * 1000);
const sec = (milli: number) => milli / 1000;

/** Regions in milliseconds. */
interface Region {
  start: number;
  end: number;
  /**
   * Midpoints of the short pauses (≤ gapSec) that merging joined into this region, in order: the
   * places where a cut inside the region falls between words rather than inside one.
   */
  pauses?: number[];
}

/** A cut inside a region moves to a merged pause at most this fraction of an even piece away. */
const PAUSE_SNAP_FRACTION = 0.4;

/** A unit the partition never splits: a whole region or a piece of one. Core times, ms. */
interface Atom {
  region: number;
  start: number;
  end: number;
}

interface Limits {
  maxMs: number;
  gapMs: number;
  overlapMs: number;
  maxRatio: number;
}

/**
 * Clamps VAD regions to [0, duration], sorts them, drops empty ones and merges those that overlap
 * or are separated by a pause no longer than `gapSec`. Seconds in, seconds out (multiples of 1 ms).
 */
export function normalizeSpeechRegions(regions: readonly SpeechRegion[], durationSec: number, gapSec = 0): SpeechRegion[] {
  return normalize(regions, ms(durationSec), ms(gapSec)).map((r) => ({ start: sec(r.start), end: sec(r.end) }));
}

function normalize(regions: readonly SpeechRegion[], durationMs: number, gapMs: number): Region[] {
  const clamped = regions
    .map((r) => ({ start: Math.max(0, ms(r.start)), end: Math.min(durationMs, ms(r.end)) }))
    .filter((r) => r.end > r.start)
    .sort((a, b) => a.start - b.start);
  const out: Region[] = [];
  for (const r of clamped) {
    const last = out[out.length - 1];
    if (last && r.start - last.end <= gapMs) {
      if (r.start > last.end) (last.pauses ??= []).push(Math.round((last.end + r.start) / 2));
      last.end = Math.max(last.end, r.end);
    } else out.push({ ...r });
  }
  return out;
}

function validate(durationSec: number, options: SpeechChunkOptions): Limits & { minChunkMs: number } {
  const { maxChunkSec, capacity, gapSec } = options;
  const minChunkSec = options.minChunkSec ?? DEFAULT_MIN_CHUNK_SEC;
  const overlapSec = options.overlapSec ?? DEFAULT_OVERLAP_SEC;
  const maxRatio = options.maxRatio ?? DEFAULT_MAX_RATIO;
  const bad: string[] = [];
  if (!(Number.isFinite(durationSec) && durationSec >= 0)) bad.push(`durationSec must be a finite number ≥ 0 (got ${durationSec})`);
  if (!(Number.isFinite(maxChunkSec) && maxChunkSec >= 0.01)) bad.push(`maxChunkSec must be a finite number of seconds ≥ 0.01 (got ${maxChunkSec})`);
  if (!(Number.isInteger(capacity) && capacity >= 1)) bad.push(`capacity must be an integer ≥ 1 (got ${capacity})`);
  if (!(Number.isFinite(gapSec) && gapSec >= 0 && gapSec < maxChunkSec)) bad.push(`gapSec must be ≥ 0 and < maxChunkSec (got ${gapSec})`);
  if (!(Number.isFinite(minChunkSec) && minChunkSec >= 0)) bad.push(`minChunkSec must be a finite number ≥ 0 (got ${minChunkSec})`);
  if (!(Number.isFinite(overlapSec) && overlapSec >= 0 && overlapSec <= maxChunkSec / 4)) bad.push(`overlapSec must be ≥ 0 and ≤ maxChunkSec / 4 (got ${overlapSec})`);
  if (!(maxRatio >= 1)) bad.push(`maxRatio must be ≥ 1 (got ${maxRatio})`);
  if (bad.length) throw new RangeError(`invalid speech chunk plan: ${bad.join('; ')}`);
  return { maxMs: Math.floor(maxChunkSec * 1000), gapMs: ms(gapSec), overlapMs: ms(overlapSec), maxRatio, minChunkMs: ms(minChunkSec) };
}

/**
 * Plans the engine calls for the speech of one recording (see the file comment for the algorithm
 * and its guarantees).
 *
 * @param regions VAD speech regions, seconds (sorted, non-overlapping, padded; normalized anyway).
 * @param durationSec length of the recording, seconds.
 * @returns chunks in recording order, indexed 0…N-1; empty when there is no speech.
 * @throws RangeError when an option is out of range (a configuration error, never a client's).
 */
export function planSpeechChunks(regions: readonly SpeechRegion[], durationSec: number, options: SpeechChunkOptions): SpeechChunk[] {
  const limits = validate(durationSec, options);
  const durationMs = ms(durationSec);
  const merged = normalize(regions, durationMs, limits.gapMs);
  if (merged.length === 0) return [];
  const speechMs = merged.reduce((sum, r) => sum + r.end - r.start, 0);

  const pieces = evenPieces(merged, limits);
  const fewest = new Geometry(merged, pieces, limits).minCountPrefix[pieces.length];
  const worthwhile = Math.max(1, Math.floor(speechMs / Math.max(1, limits.minChunkMs)));
  const base = Math.max(Math.min(options.capacity, worthwhile), fewest);
  const roundedUp = Math.max(base, Math.min(Math.ceil(fewest / options.capacity) * options.capacity, worthwhile, pieces.length));

  // Whole regions first, with full rounds of calls if that balances, else with the fewest calls.
  const coarse: Partition[] = [];
  for (const count of new Set([roundedUp, base])) {
    const plan = pieces.length >= count ? partition(merged, pieces, count, limits) : null;
    if (plan?.balanced) return build(plan, durationMs, limits);
    if (plan) coarse.push(plan);
  }

  // Mid-speech cuts on a grid inside regions longer than the target chunk length.
  const grid = gridPieces(merged, speechMs / base, limits);
  const fine = partition(merged, grid, Math.min(base, grid.length), limits);
  if (fine && (fine.balanced || coarse.length === 0)) return build(fine, durationMs, limits);
  if (coarse.length) return build(coarse.reduce((best, plan) => (plan.ratio < best.ratio ? plan : best)), durationMs, limits);
  // Only when the grid cannot be cut to fit (a maxChunkSec of a second or two): one chunk per even piece.
  const single = partition(merged, pieces, pieces.length, limits);
  if (!single) throw new Error('speech chunk plan: no partition fits maxChunkSec');
  return build(single, durationMs, limits);
}

/** Step 2: whole regions, and regions too long for one chunk split evenly into the fewest fitting pieces. */
function evenPieces(regions: Region[], limits: Limits): Atom[] {
  const out: Atom[] = [];
  regions.forEach((r, index) => {
    const length = r.end - r.start;
    let k = Math.max(1, Math.ceil(length / limits.maxMs));
    // Audio of a piece: its core plus the overlap on each cut side (interior pieces have two).
    const fits = (n: number) => n === 1 ? length <= limits.maxMs : Math.ceil(length / n) + limits.overlapMs * (n > 2 ? 2 : 1) <= limits.maxMs;
    while (!fits(k)) k++;
    out.push(...split(r, index, k, limits));
  });
  return out;
}

/** Step 5: regions longer than `targetMs` divided into a grid of candidate cut points. */
function gridPieces(regions: Region[], targetMs: number, limits: Limits): Atom[] {
  const step = Math.max(Math.round(targetMs / 4), 2 * limits.overlapMs, MIN_GRID_MS);
  const out: Atom[] = [];
  regions.forEach((r, index) => {
    const length = r.end - r.start;
    const k = length > targetMs || length > limits.maxMs ? Math.max(1, Math.round(length / step)) : 1;
    out.push(...split(r, index, k, limits));
  });
  return out;
}

/**
 * Region `r` in `k` pieces, each cut placed where it falls between words when it can: the cuts
 * are chosen among the even positions and the pauses merged into the region (Region.pauses)
 * within PAUSE_SNAP_FRACTION of a piece of the even position, by a small dynamic program that
 * puts the fewest cuts outside a pause, then keeps the pieces closest to even (least sum of
 * squared deviations). Every piece, with `limits.overlapMs` of audio on each side that is cut,
 * fits `limits.maxMs`, and cuts are at least 2 × overlap apart; the even cuts always satisfy
 * this (evenPieces and gridPieces choose `k` so), so a plan always exists.
 */
function split(r: Region, index: number, k: number, limits: Limits): Atom[] {
  const length = r.end - r.start;
  const even = Array.from({ length: k + 1 }, (_, i) => r.start + Math.round((length * i) / k));
  const pauses = new Set(r.pauses ?? []);
  if (k === 1 || pauses.size === 0) return pieces(even, index);
  const piece = length / k;
  const reach = piece * PAUSE_SNAP_FRACTION;
  // Candidates for cut j (1 … k-1): its even position, and the pauses within reach of it.
  const options = Array.from({ length: k - 1 }, (_, n) => {
    const at = even[n + 1];
    return [at, ...[...pauses].filter((p) => p !== at && Math.abs(p - at) <= reach)];
  });
  const cost = (j: number, p: number) => (pauses.has(p) ? 0 : 1) + ((p - even[j]) / piece) ** 2;
  const fits = (from: number, to: number, cutBefore: boolean, cutAfter: boolean) =>
    to - from >= (cutBefore && cutAfter ? 2 * limits.overlapMs : 0) && to - from + (cutBefore ? limits.overlapMs : 0) + (cutAfter ? limits.overlapMs : 0) <= limits.maxMs;
  // best[n][c]: least cost of cuts 1 … n+1 with cut n+1 at options[n][c]; from[n][c]: the choice for cut n.
  const best: number[][] = [];
  const from: number[][] = [];
  for (let n = 0; n < k - 1; n++) {
    best.push(options[n].map(() => Infinity));
    from.push(options[n].map(() => -1));
    options[n].forEach((p, c) => {
      if (n === 0) {
        if (fits(r.start, p, false, true)) best[n][c] = cost(1, p);
        return;
      }
      options[n - 1].forEach((q, d) => {
        const total = best[n - 1][d] + cost(n + 1, p);
        if (total < best[n][c] && p > q && fits(q, p, true, true)) {
          best[n][c] = total;
          from[n][c] = d;
        }
      });
    });
  }
  const last = k - 2;
  let choice = -1;
  options[last].forEach((p, c) => {
    if (fits(p, r.end, true, false) && best[last][c] < (choice < 0 ? Infinity : best[last][choice])) choice = c;
  });
  if (choice < 0) return pieces(even, index);
  const cuts = [r.end];
  for (let n = last; n >= 0; n--) {
    cuts.unshift(options[n][choice]);
    choice = from[n][choice];
  }
  cuts.unshift(r.start);
  return pieces(cuts, index);
}

/** Atoms of one region between consecutive cut positions (ms). */
function pieces(cuts: number[], index: number): Atom[] {
  return cuts.slice(0, -1).map((start, i) => ({ region: index, start, end: cuts[i + 1] }));
}

/** Chunk lengths of groups of atoms: prefix sums and the overlap a mid-speech cut adds. Ms. */
class Geometry {
  private readonly prefix: number[];
  private readonly pauses: number[];
  /** Speech in all atoms, ms. */
  readonly speech: number;
  /** Pause boundaries between atoms (each costs a gap unless a chunk boundary falls there). */
  readonly pauseCount: number;
  /** Most audio the gaps and overlaps of any partition can add, ms. */
  readonly extraMax: number;
  /** Fewest chunks the first i atoms fit into (Infinity when impossible). */
  readonly minCountPrefix: number[];
  /** Fewest chunks the atoms from i on fit into. */
  readonly minCountSuffix: number[];

  constructor(private readonly regions: Region[], readonly atoms: Atom[], private readonly limits: Limits) {
    const m = atoms.length;
    this.prefix = [0];
    this.pauses = [0];
    for (let i = 0; i < m; i++) {
      this.prefix.push(this.prefix[i] + atoms[i].end - atoms[i].start);
      // pauses[j]: pause boundaries among boundaries 1..j (boundary j lies before atom j).
      if (i > 0) this.pauses.push(this.pauses[i - 1] + (this.isCut(i) ? 0 : 1));
    }
    this.pauses.push(this.pauses[this.pauses.length - 1]);
    this.speech = this.prefix[m]!;
    this.pauseCount = this.pauses[m]!;
    let extra = limits.gapMs * this.pauses[m];
    for (let j = 1; j < m; j++) extra += this.overlapBefore(j) + this.overlapAfter(j);
    this.extraMax = extra;
    this.minCountPrefix = [0];
    for (let i = 1; i <= m; i++) {
      let best = Infinity;
      for (let j = i - 1; j >= 0 && this.length(j, i) <= limits.maxMs; j--) best = Math.min(best, this.minCountPrefix[j] + 1);
      this.minCountPrefix.push(best);
    }
    this.minCountSuffix = new Array<number>(m + 1).fill(Infinity);
    this.minCountSuffix[m] = 0;
    for (let i = m - 1; i >= 0; i--) {
      for (let j = i + 1; j <= m && this.length(i, j) <= limits.maxMs; j++) this.minCountSuffix[i] = Math.min(this.minCountSuffix[i], this.minCountSuffix[j] + 1);
    }
  }

  /** Whether boundary j (between atom j-1 and atom j) lies inside a region: cutting there is a mid-speech cut. */
  isCut(j: number): boolean {
    return j > 0 && j < this.atoms.length && this.atoms[j - 1].region === this.atoms[j].region;
  }

  /** Overlap heard before a mid-speech cut at boundary j by the chunk that starts there. */
  overlapBefore(j: number): number {
    return this.isCut(j) ? Math.min(this.limits.overlapMs, this.atoms[j].start - this.regions[this.atoms[j].region].start) : 0;
  }

  /** Overlap heard after a mid-speech cut at boundary j by the chunk that ends there. */
  overlapAfter(j: number): number {
    return this.isCut(j) ? Math.min(this.limits.overlapMs, this.regions[this.atoms[j].region].end - this.atoms[j].start) : 0;
  }

  /**
   * Audio length of a chunk made of atoms a…b-1: their speech, a gap at each pause boundary
   * inside, and the overlap at a mid-speech cut on either end. Non-increasing in a for fixed b
   * (every atom next to a cut is at least one overlap long), which the window scans rely on.
   */
  length(a: number, b: number): number {
    return this.prefix[b] - this.prefix[a] + this.limits.gapMs * (this.pauses[b - 1] - this.pauses[a]) + this.overlapBefore(a) + this.overlapAfter(b);
  }
}

interface Entry {
  min: number;
  max: number;
  cuts: number;
  /** Atom index where the last group starts, and the entry it extends in state (from, k-1). */
  from: number;
  prev: number;
}

interface Partition {
  /** Group boundaries: groups are atoms [bounds[g], bounds[g+1]). */
  bounds: number[];
  atoms: Atom[];
  geometry: Geometry;
  balanced: boolean;
  /** Longest chunk / shortest chunk. */
  ratio: number;
}

/**
 * Most steps (window positions and frontier extensions) the exact search may take: a few hundred
 * milliseconds. Past it the scalar search takes over; that happens only with hundreds of chunks
 * and many possible chunk counts per prefix (a capacity in the hundreds).
 */
const EXACT_BUDGET = 2_000_000;

/** Step 4: the exact partition of `atoms` into `count` groups (see the file comment); null when none fits. */
function partition(regions: Region[], atoms: Atom[], count: number, limits: Limits): Partition | null {
  const geometry = new Geometry(regions, atoms, limits);
  const m = atoms.length;
  if (count < 1 || count > m || geometry.minCountPrefix[m] > count) return null;
  const ranges = stateRanges(geometry, m, count);
  const budget = { left: EXACT_BUDGET };

  // A balanced plan's chunks lie within [average / maxRatio, maxRatio × average], and the average
  // lies between the speech alone and the speech with every gap and overlap it could carry.
  const speech = geometry.speech;
  const lo = Math.floor(speech / count / limits.maxRatio);
  const hi = Math.min(limits.maxMs, Math.ceil((limits.maxRatio * (speech + geometry.extraMax)) / count));
  let table = run(geometry, ranges, count, lo, hi, (e) => e.max <= limits.maxRatio * e.min, budget);
  let final = table?.get(key(m, count, count)) ?? [];
  const balanced = final.length > 0;
  if (table && !balanced) {
    const bestMax = minMax(geometry, count, limits);
    table = run(geometry, ranges, count, 0, bestMax, () => true, budget);
    final = table?.get(key(m, count, count)) ?? [];
  }
  if (!table) return scalarPartition(geometry, ranges, count, limits);
  if (final.length === 0) return null;
  const order = balanced
    ? (a: Entry, b: Entry) => a.cuts - b.cuts || a.max - b.max || b.min - a.min
    : (a: Entry, b: Entry) => a.max - b.max || a.cuts - b.cuts || b.min - a.min;
  let best = 0;
  for (let i = 1; i < final.length; i++) if (order(final[i], final[best]) < 0) best = i;

  const bounds = [m];
  let i = m;
  let k = count;
  let index = best;
  while (k > 0) {
    const entry = table.get(key(i, k, count))![index];
    bounds.unshift(entry.from);
    index = entry.prev;
    i = entry.from;
    k--;
  }
  return { bounds, atoms, geometry, balanced, ratio: final[best].max / final[best].min };
}

const key = (i: number, k: number, count: number) => i * (count + 1) + k;

/**
 * For every prefix of i atoms, the group counts k from which exactly `count` groups can still be
 * reached: at least the fewest the prefix fits into and at most i, leaving room for the suffix.
 */
function stateRanges(geometry: Geometry, m: number, count: number): { low: number[]; high: number[] } {
  const low = [0];
  const high = [0];
  for (let i = 1; i <= m; i++) {
    low.push(Math.max(geometry.minCountPrefix[i], count - (m - i), 1));
    high.push(Math.min(i, count - geometry.minCountSuffix[i]));
  }
  return { low, high };
}

/**
 * The dynamic program: state (i atoms consumed, k groups formed) holds every non-dominated
 * (min, max, cuts) of the groups formed so far that passes `keep`, using only groups of length
 * [lo, hi] ms. Both may only reject entries no completion of which is wanted (min only falls and
 * max only rises as groups are added). Null when the search ran out of `budget`.
 */
function run(
  geometry: Geometry,
  ranges: { low: number[]; high: number[] },
  count: number,
  lo: number,
  hi: number,
  keep: (e: Entry) => boolean,
  budget: { left: number },
): Map<number, Entry[]> | null {
  const m = ranges.low.length - 1;
  const table = new Map<number, Entry[]>([[key(0, 0, count), [{ min: Infinity, max: 0, cuts: 0, from: -1, prev: -1 }]]]);
  for (let i = 1; i <= m; i++) {
    const cut = geometry.isCut(i) ? 1 : 0;
    for (let k = ranges.low[i]; k <= ranges.high[i]; k++) {
      const frontier: Entry[] = [];
      for (let j = i - 1; j >= k - 1; j--) {
        if (--budget.left < 0) return null;
        const length = geometry.length(j, i);
        if (length > hi) break;
        if (length < lo) continue;
        const previous = table.get(key(j, k - 1, count));
        if (!previous) continue;
        budget.left -= previous.length;
        for (let p = 0; p < previous.length; p++) {
          const e = previous[p];
          const candidate: Entry = { min: Math.min(e.min, length), max: Math.max(e.max, length), cuts: e.cuts + cut, from: j, prev: p };
          if (keep(candidate)) insert(frontier, candidate);
        }
      }
      if (frontier.length) table.set(key(i, k, count), frontier);
    }
  }
  return table;
}

function insert(frontier: Entry[], c: Entry): void {
  for (const e of frontier) if (e.min >= c.min && e.max <= c.max && e.cuts <= c.cuts) return;
  for (let i = frontier.length - 1; i >= 0; i--) {
    const e = frontier[i];
    if (c.min >= e.min && c.max <= e.max && c.cuts <= e.cuts) frontier.splice(i, 1);
  }
  frontier.push(c);
}

/**
 * A scalar dynamic program over the same states, for searches too large for the exact one: fewest
 * mid-speech cuts, then the smallest sum of squared deviations from the mean chunk length. Good
 * balance in practice, without the exact search's guarantee.
 */
function scalarPartition(geometry: Geometry, ranges: { low: number[]; high: number[] }, count: number, limits: Limits): Partition | null {
  // The mean chunk length when every chunk boundary falls on a pause.
  const mean = (geometry.speech + limits.gapMs * Math.max(0, geometry.pauseCount - (count - 1))) / count;
  // Chunks over twice the mean are rarely part of a good plan; search them only when nothing else fits.
  return scalarSearch(geometry, ranges, count, limits, mean, Math.min(limits.maxMs, 2 * mean)) ?? scalarSearch(geometry, ranges, count, limits, mean, limits.maxMs);
}

function scalarSearch(geometry: Geometry, ranges: { low: number[]; high: number[] }, count: number, limits: Limits, mean: number, longest: number): Partition | null {
  const m = ranges.low.length - 1;
  const at: number[] = [];
  let size = 0;
  for (let i = 0; i <= m; i++) {
    at.push(size);
    size += Math.max(0, ranges.high[i] - ranges.low[i] + 1);
  }
  const index = (i: number, k: number) => (k < ranges.low[i] || k > ranges.high[i] ? -1 : at[i] + k - ranges.low[i]);
  const cuts = new Float64Array(size).fill(Infinity);
  const spread = new Float64Array(size).fill(Infinity);
  const from = new Int32Array(size).fill(-1);
  cuts[0] = 0;
  spread[0] = 0;
  for (let i = 1; i <= m; i++) {
    const cut = geometry.isCut(i) ? 1 : 0;
    for (let k = ranges.low[i]; k <= ranges.high[i]; k++) {
      const here = index(i, k);
      for (let j = i - 1; j >= k - 1; j--) {
        const length = geometry.length(j, i);
        if (length > longest) break;
        const there = index(j, k - 1);
        if (there < 0 || cuts[there] === Infinity) continue;
        const c = cuts[there] + cut;
        const d = spread[there] + (length - mean) ** 2;
        if (c < cuts[here] || (c === cuts[here] && d < spread[here])) {
          cuts[here] = c;
          spread[here] = d;
          from[here] = j;
        }
      }
    }
  }
  if (index(m, count) < 0 || cuts[index(m, count)] === Infinity) return null;
  const bounds = [m];
  for (let i = m, k = count; k > 0; k--) {
    i = from[index(i, k)]!;
    bounds.unshift(i);
  }
  const lengths = bounds.slice(1).map((b, g) => geometry.length(bounds[g], b));
  const [max, min] = [Math.max(...lengths), Math.min(...lengths)];
  return { bounds, atoms: geometry.atoms, geometry, balanced: max <= limits.maxRatio * min, ratio: max / min };
}

/**
 * Shortest possible longest chunk over partitions into exactly `count` groups: the least bound B
 * whose greedy packing needs at most `count` chunks (splitting a chunk never lengthens its parts,
 * so any count up to the number of atoms is then reachable). Binary search over whole ms.
 */
function minMax(geometry: Geometry, count: number, limits: Limits): number {
  const m = geometry.atoms.length;
  const fits = (bound: number) => {
    let groups = 0;
    for (let a = 0; a < m; groups++) {
      let b = a + 1;
      if (geometry.length(a, b) > bound) return false;
      while (b < m && geometry.length(a, b + 1) <= bound) b++;
      a = b;
    }
    return groups <= count;
  };
  let low = 0;
  let high = limits.maxMs;
  while (low < high) {
    const mid = Math.floor((low + high) / 2);
    if (fits(mid)) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** Turns a partition into chunks: same-region atoms of a group become one span; cores tile the recording. */
function build(plan: Partition, durationMs: number, limits: Limits): SpeechChunk[] {
  const { atoms, bounds, geometry } = plan;
  const chunks: SpeechChunk[] = [];
  for (let g = 0; g + 1 < bounds.length; g++) {
    const a = bounds[g];
    const b = bounds[g + 1];
    const spans: ChunkSpan[] = [];
    let offset = 0;
    let speech = 0;
    for (let i = a; i < b; ) {
      let j = i + 1;
      while (j < b && atoms[j].region === atoms[i].region) j++;
      const cutBefore = i === a && geometry.isCut(a);
      const cutAfter = j === b && geometry.isCut(b);
      const coreStart = atoms[i].start;
      const coreEnd = atoms[j - 1].end;
      const start = coreStart - (cutBefore ? geometry.overlapBefore(a) : 0);
      const end = coreEnd + (cutAfter ? geometry.overlapAfter(b) : 0);
      if (spans.length) offset += limits.gapMs;
      spans.push({ start: sec(start), end: sec(end), core_start: sec(coreStart), core_end: sec(coreEnd), offset: sec(offset), cut_before: cutBefore, cut_after: cutAfter });
      offset += end - start;
      speech += coreEnd - coreStart;
      i = j;
    }
    chunks.push({ index: g, spans, gap_sec: sec(limits.gapMs), duration_sec: sec(offset), speech_sec: sec(speech), core_start: 0, core_end: sec(durationMs) });
  }
  for (let g = 1; g < chunks.length; g++) {
    const boundary = bounds[g];
    const at = geometry.isCut(boundary)
      ? atoms[boundary].start
      : Math.round((atoms[boundary - 1].end + atoms[boundary].start) / 2);
    chunks[g - 1].core_end = sec(at);
    chunks[g].core_start = sec(at);
  }
  return chunks;
}
