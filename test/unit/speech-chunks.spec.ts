import type { Segment, TranscriptionResult, Word } from '../../src/engines/engine.spec.js';
import {
  normalizeSpeechRegions,
  planSpeechChunks,
  type SpeechChunk,
  type SpeechChunkOptions,
  type SpeechRegion,
} from '../../src/transcription/long-audio/speech-chunks.js';
import { mapChunkResult, mergeSpeechChunks, spanIndexAt, toRecordingTime } from '../../src/transcription/long-audio/time-map.js';
import { seededRandom as random } from '../support/random.js';

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const speechOf = (regions: SpeechRegion[]) => r3(regions.reduce((s, r) => s + r.end - r.start, 0));
const ratio = (plan: SpeechChunk[]) => Math.max(...plan.map((c) => c.duration_sec)) / Math.min(...plan.map((c) => c.duration_sec));
const cuts = (plan: SpeechChunk[]) => plan.reduce((n, c) => n + c.spans.filter((s) => s.cut_after).length, 0);

/** Regions laid out one after another with pauses; lengths and pauses in seconds. */
function layout(lengths: number[], pause: number | (() => number), start = 1): SpeechRegion[] {
  let t = start;
  return lengths.map((length) => {
    const region = { start: r3(t), end: r3(t + length) };
    t += length + (typeof pause === 'number' ? pause : pause());
    return region;
  });
}

/** The invariants every plan must keep. */
function checkPlan(plan: SpeechChunk[], regions: SpeechRegion[], duration: number, options: SpeechChunkOptions): void {
  const normalized = normalizeSpeechRegions(regions, duration, options.gapSec);
  let previousEnd = -Infinity;
  let coreTotal = 0;
  plan.forEach((chunk, index) => {
    expect(chunk.index).toBe(index);
    expect(chunk.duration_sec).toBeLessThanOrEqual(options.maxChunkSec + 1e-9);
    expect(chunk.spans.length).toBeGreaterThan(0);
    // Spans laid end to end with gaps: offsets and the chunk length agree.
    let offset = 0;
    let speech = 0;
    chunk.spans.forEach((span, s) => {
      expect(span.offset).toBeCloseTo(offset, 6);
      offset = span.offset + span.end - span.start + (s < chunk.spans.length - 1 ? chunk.gap_sec : 0);
      expect(span.start).toBeLessThanOrEqual(span.core_start);
      expect(span.core_start).toBeLessThan(span.core_end);
      expect(span.core_end).toBeLessThanOrEqual(span.end);
      // Overlap only at mid-speech cuts.
      if (!span.cut_before) expect(span.start).toBe(span.core_start);
      if (!span.cut_after) expect(span.end).toBe(span.core_end);
      // Recording order, no core overlap.
      expect(span.core_start).toBeGreaterThanOrEqual(previousEnd - 1e-9);
      previousEnd = span.core_end;
      // Every span lies inside one speech region.
      expect(normalized.some((r) => r.start <= span.start + 1e-9 && span.end <= r.end + 1e-9)).toBe(true);
      speech += span.core_end - span.core_start;
    });
    expect(chunk.duration_sec).toBeCloseTo(offset, 6);
    expect(chunk.speech_sec).toBeCloseTo(speech, 6);
    coreTotal += speech;
    // Chunk cores tile the recording.
    expect(chunk.core_start).toBe(index === 0 ? 0 : plan[index - 1].core_end);
    expect(chunk.core_start).toBeLessThanOrEqual(chunk.spans[0].core_start);
    expect(chunk.core_end).toBeGreaterThanOrEqual(chunk.spans[chunk.spans.length - 1].core_end);
  });
  if (plan.length) expect(plan[plan.length - 1].core_end).toBe(duration);
  // Total mapped speech == total speech: every millisecond in exactly one span core.
  expect(coreTotal).toBeCloseTo(speechOf(normalized), 6);
  // Mid-speech cuts come in pairs at chunk boundaries, at the shared core boundary.
  for (let i = 0; i + 1 < plan.length; i++) {
    const last = plan[i].spans[plan[i].spans.length - 1];
    const next = plan[i + 1].spans[0];
    expect(last.cut_after).toBe(next.cut_before);
    if (last.cut_after) {
      expect(last.core_end).toBe(next.core_start);
      expect(plan[i].core_end).toBe(last.core_end);
    }
  }
}

/** Whether the regions (no cuts) can be split into `count` contiguous chunks, each ≤ max, with longest ≤ bound × shortest. */
function balancedPartitionExists(regions: SpeechRegion[], count: number, maxChunkSec: number, gapSec: number, bound = 1.5): boolean {
  const lengths = regions.map((r) => r.end - r.start);
  const m = lengths.length;
  const chunkLength = (a: number, b: number) => lengths.slice(a, b).reduce((s, x) => s + x, 0) + gapSec * (b - a - 1);
  const search = (from: number, left: number, min: number, max: number): boolean => {
    if (left === 1) {
      const length = chunkLength(from, m);
      if (length > maxChunkSec + 1e-9) return false;
      return Math.max(max, length) <= bound * Math.min(min, length) + 1e-9;
    }
    for (let to = from + 1; to <= m - left + 1; to++) {
      const length = chunkLength(from, to);
      if (length > maxChunkSec + 1e-9) break;
      if (search(to, left - 1, Math.min(min, length), Math.max(max, length))) return true;
    }
    return false;
  };
  return count >= 1 && count <= m && search(0, count, Infinity, 0);
}

/** Fewest chunks ≤ max the regions fit into, in order (greedy is optimal for contiguous packing). */
function fewestChunks(regions: SpeechRegion[], maxChunkSec: number, gapSec: number): number {
  let count = 0;
  let current = Infinity;
  for (const r of regions) {
    const length = r.end - r.start;
    if (current + gapSec + length <= maxChunkSec + 1e-9) current += gapSec + length;
    else {
      count++;
      current = length;
    }
  }
  return count;
}

const word = (w: string, start: number, end: number): Word => ({ word: w, start, end, confidence: 0.9, speaker_tag: null });
const segmentOf = (words: Word[]): Segment => ({
  start: words[0].start, end: words[words.length - 1].end, text: words.map((w) => w.word).join(' '), speaker_tag: null, confidence: 0.9, words,
});
const resultOf = (segments: Segment[], language: string | null = 'en', warnings: string[] = []): TranscriptionResult => ({
  text: segments.map((s) => s.text).join(' '), language, duration_sec: 0, segments, warnings, engine: { id: 'whisper-rocm', model: 'large-v3' },
});

describe('planSpeechChunks', () => {
  const base: SpeechChunkOptions = { maxChunkSec: 120, capacity: 1, gapSec: 0.5 };

  it('makes no chunks when there is no speech', () => {
    expect(planSpeechChunks([], 600, base)).toEqual([]);
    // Regions outside the recording or empty count as no speech.
    expect(planSpeechChunks([{ start: 700, end: 710 }, { start: 5, end: 5 }], 600, base)).toEqual([]);
  });

  it('packs regions that sum under one chunk into one chunk, spans laid end to end with gaps', () => {
    const regions = [{ start: 2, end: 5 }, { start: 10, end: 14.5 }, { start: 60, end: 61.2 }];
    const plan = planSpeechChunks(regions, 90, { ...base, capacity: 1 });
    expect(plan).toHaveLength(1);
    expect(plan[0]).toEqual({
      index: 0,
      gap_sec: 0.5,
      duration_sec: 3 + 0.5 + 4.5 + 0.5 + 1.2,
      speech_sec: 8.7,
      core_start: 0,
      core_end: 90,
      spans: [
        { start: 2, end: 5, core_start: 2, core_end: 5, offset: 0, cut_before: false, cut_after: false },
        { start: 10, end: 14.5, core_start: 10, core_end: 14.5, offset: 3.5, cut_before: false, cut_after: false },
        { start: 60, end: 61.2, core_start: 60, core_end: 61.2, offset: 8.5, cut_before: false, cut_after: false },
      ],
    });
  });

  it('keeps a real pause no longer than the gap instead of replacing it, and merges overlapping regions', () => {
    const plan = planSpeechChunks([{ start: 1, end: 3 }, { start: 3.3, end: 5 }, { start: 4.5, end: 6 }, { start: 20, end: 21 }], 30, base);
    expect(plan[0].spans.map((s) => [s.start, s.end])).toEqual([[1, 6], [20, 21]]);
  });

  it('splits long speech into 2 balanced chunks for capacity 2, cutting only in pauses', () => {
    const rand = random(7);
    const regions = layout(Array.from({ length: 30 }, () => 2 + rand() * 6), () => 0.8 + rand() * 3);
    const duration = regions[regions.length - 1].end + 2;
    const options = { ...base, capacity: 2 };
    const plan = planSpeechChunks(regions, duration, options);
    checkPlan(plan, regions, duration, options);
    expect(plan).toHaveLength(2);
    expect(cuts(plan)).toBe(0);
    expect(ratio(plan)).toBeLessThanOrEqual(1.1);
  });

  it('makes fewer chunks than capacity when the speech is short (chunks of at least minChunkSec)', () => {
    const regions = layout([6, 7, 5, 7], 2);
    const options = { ...base, capacity: 4 };
    const plan = planSpeechChunks(regions, 40, options);
    checkPlan(plan, regions, 40, options);
    // 25 s of speech: two chunks of at least 10 s, not four.
    expect(plan).toHaveLength(2);
    expect(planSpeechChunks(layout([3, 4], 1), 20, options)).toHaveLength(1);
    // A smaller minimum allows more calls.
    expect(planSpeechChunks(regions, 40, { ...options, minChunkSec: 5 })).toHaveLength(4);
  });

  it('splits a 400 s region for a 30 s engine evenly, with overlap at each mid-speech cut', () => {
    const regions = [{ start: 50, end: 450 }];
    const options = { maxChunkSec: 30, capacity: 1, gapSec: 0.5 };
    const plan = planSpeechChunks(regions, 500, options);
    checkPlan(plan, regions, 500, options);
    // Interior pieces carry 1 s of overlap on both sides: 400 / 15 ≈ 26.7 s + 2 s ≤ 30 s.
    expect(plan).toHaveLength(15);
    expect(ratio(plan)).toBeLessThanOrEqual(1.1);
    expect(cuts(plan)).toBe(14);
    expect(plan[0].spans[0]).toMatchObject({ start: 50, core_start: 50, cut_before: false, cut_after: true });
    expect(plan[0].spans[0].end - plan[0].spans[0].core_end).toBeCloseTo(1, 6);
    expect(plan[1].spans[0].core_start - plan[1].spans[0].start).toBeCloseTo(1, 6);
    expect(plan[14].spans[0]).toMatchObject({ end: 450, core_end: 450, cut_after: false });
    const cores = plan.map((c) => c.spans[0].core_end - c.spans[0].core_start);
    expect(Math.max(...cores) - Math.min(...cores)).toBeLessThanOrEqual(0.002);
  });

  it('cuts fluent speech, whose short pauses merged it into one region, in those pauses rather than inside words', () => {
    // Sentences of 2–6 s, 0.2 s apart (what VAD padding leaves of 0.8 s pauses): one 211 s region
    // once pauses ≤ gapSec are merged, so it must be cut; the cuts should land in the pauses.
    const rand = random(5);
    const regions = layout(Array.from({ length: 50 }, () => 2 + rand() * 4), 0.2);
    const duration = regions[regions.length - 1].end + 1;
    const options = { maxChunkSec: 30, capacity: 2, gapSec: 0.5 };
    expect(normalizeSpeechRegions(regions, duration, options.gapSec)).toHaveLength(1);
    const inPause = (t: number) => regions.some((r, i) => i > 0 && t > regions[i - 1].end && t < r.start);
    const cutPoints = (plan: SpeechChunk[]) => plan.flatMap((c) => c.spans.filter((sp) => sp.cut_after).map((sp) => sp.core_end));

    const plan = planSpeechChunks(regions, duration, options);
    checkPlan(plan, regions, duration, options);
    expect(plan).toHaveLength(8);
    expect(ratio(plan)).toBeLessThanOrEqual(1.5);
    // 7 cuts; with every piece ≤ 30 s (28 s of core between two 1 s overlaps) one cannot reach a pause.
    expect(cutPoints(plan)).toHaveLength(7);
    expect(cutPoints(plan).filter((t) => !inPause(t)).length).toBeLessThanOrEqual(1);

    // The same speech as one solid region (no pauses known): even cuts, which mostly fall inside words.
    const solid = planSpeechChunks([{ start: regions[0].start, end: regions[regions.length - 1].end }], duration, options);
    checkPlan(solid, [{ start: regions[0].start, end: regions[regions.length - 1].end }], duration, options);
    expect(cutPoints(solid)).toHaveLength(7);
    expect(cutPoints(solid).filter((t) => !inPause(t)).length).toBeGreaterThanOrEqual(5);
    const solidCores = solid.map((c) => c.spans[0].core_end - c.spans[0].core_start);
    expect(Math.max(...solidCores) - Math.min(...solidCores)).toBeLessThanOrEqual(0.002);

    // Longer sentences (3–9 s) leave fewer pauses within reach: still most cuts land in one.
    const rand2 = random(5);
    const longer = layout(Array.from({ length: 34 }, () => 3 + rand2() * 6), 0.2);
    const longerPlan = planSpeechChunks(longer, longer[longer.length - 1].end + 1, options);
    checkPlan(longerPlan, longer, longer[longer.length - 1].end + 1, options);
    const inLongerPause = (t: number) => longer.some((r, i) => i > 0 && t > longer[i - 1].end && t < r.start);
    expect(cutPoints(longerPlan).filter(inLongerPause).length).toBeGreaterThanOrEqual(5);
  });

  it('packs many tiny regions into few chunks without cutting speech', () => {
    const rand = random(11);
    const regions = layout(Array.from({ length: 600 }, () => 0.2 + rand() * 0.4), () => 0.6 + rand() * 2);
    const duration = regions[regions.length - 1].end + 1;
    const options = { maxChunkSec: 30, capacity: 3, gapSec: 0.5 };
    const plan = planSpeechChunks(regions, duration, options);
    checkPlan(plan, regions, duration, options);
    expect(cuts(plan)).toBe(0);
    // The gaps count against the window (~600 × (0.4 + 0.5) s of audio); full rounds of 3 calls.
    expect(plan.length).toBeGreaterThanOrEqual(fewestChunks(normalizeSpeechRegions(regions, duration, 0.5), 30, 0.5));
    expect(plan.length % 3).toBe(0);
    expect(ratio(plan)).toBeLessThanOrEqual(1.5);
  });

  it('cuts one long monologue so that every replica works at once', () => {
    const regions = [{ start: 3, end: 103 }];
    const options = { ...base, capacity: 4 };
    const plan = planSpeechChunks(regions, 110, options);
    checkPlan(plan, regions, 110, options);
    expect(plan).toHaveLength(4);
    expect(cuts(plan)).toBe(3);
    expect(ratio(plan)).toBeLessThanOrEqual(1.5);
  });

  it('cuts a region that alone unbalances the plan, but not when a balanced plan exists without cuts', () => {
    const options = { ...base, capacity: 2 };
    const unbalanced = [{ start: 0, end: 100 }, { start: 110, end: 115 }];
    const plan = planSpeechChunks(unbalanced, 120, options);
    checkPlan(plan, unbalanced, 120, options);
    expect(plan).toHaveLength(2);
    expect(ratio(plan)).toBeLessThanOrEqual(1.5);
    expect(cuts(plan)).toBe(1);

    const fine = [{ start: 0, end: 40 }, { start: 50, end: 75 }, { start: 80, end: 95 }];
    const whole = planSpeechChunks(fine, 100, options);
    expect(cuts(whole)).toBe(0);
    expect(whole.map((c) => c.spans.length)).toEqual([1, 2]);
  });

  it('keeps the longest chunk ≤ 1.5 × the shortest whenever the regions allow it (seeded random sets, checked by brute force)', () => {
    const rand = random(2024);
    let balancedCases = 0;
    for (let round = 0; round < 300; round++) {
      const maxChunkSec = [30, 60, 120][Math.floor(rand() * 3)];
      const gapSec = [0, 0.3, 0.5][Math.floor(rand() * 3)];
      const capacity = 1 + Math.floor(rand() * 5);
      const m = 2 + Math.floor(rand() * 8);
      const lengths = Array.from({ length: m }, () => r3(0.5 + rand() * (rand() < 0.3 ? maxChunkSec * 0.9 : maxChunkSec * 0.3)));
      const regions = layout(lengths, () => r3(gapSec + 0.1 + rand() * 20));
      const duration = r3(regions[m - 1].end + rand() * 10);
      const options = { maxChunkSec, capacity, gapSec };
      const plan = planSpeechChunks(regions, duration, options);
      checkPlan(plan, regions, duration, options);

      const normalized = normalizeSpeechRegions(regions, duration, gapSec);
      const speech = speechOf(normalized);
      const count = Math.max(Math.min(capacity, Math.max(1, Math.floor(speech / 10))), fewestChunks(normalized, maxChunkSec, gapSec));
      expect(plan.length).toBeGreaterThanOrEqual(Math.min(capacity, Math.max(1, Math.floor(speech / 10))));
      if (balancedPartitionExists(normalized, count, maxChunkSec, gapSec)) {
        balancedCases++;
        expect(ratio(plan)).toBeLessThanOrEqual(1.5 + 1e-9);
        // The regions allowed it: no speech was cut.
        expect(cuts(plan)).toBe(0);
      }
    }
    // The generator exercises both kinds of sets.
    expect(balancedCases).toBeGreaterThan(50);
    expect(balancedCases).toBeLessThan(300);
  });

  it('keeps every chunk within maxChunkSec and every millisecond of speech on larger random sets', () => {
    const rand = random(99);
    for (let round = 0; round < 40; round++) {
      const maxChunkSec = [30, 120][round % 2];
      const options = { maxChunkSec, capacity: 1 + Math.floor(rand() * 8), gapSec: 0.5 };
      const lengths = Array.from({ length: 20 + Math.floor(rand() * 60) }, () => r3(0.3 + rand() * (rand() < 0.1 ? 200 : 8)));
      const regions = layout(lengths, () => r3(0.6 + rand() * 5));
      const duration = regions[regions.length - 1].end;
      checkPlan(planSpeechChunks(regions, duration, options), regions, duration, options);
    }
  });

  it('plans hundreds of chunks for a very large capacity within the limits (the scalar search)', () => {
    const rand = random(17);
    const regions = layout(Array.from({ length: 800 }, () => r3(0.3 + rand() * 6)), () => r3(0.6 + rand() * 2));
    const duration = regions[regions.length - 1].end + 1;
    const options = { maxChunkSec: 120, capacity: 300, gapSec: 0.5 };
    const plan = planSpeechChunks(regions, duration, options);
    checkPlan(plan, regions, duration, options);
    // Fewer than 3000 s of speech: as many chunks of at least 10 s as there is speech for.
    const speech = speechOf(normalizeSpeechRegions(regions, duration, 0.5));
    expect(speech).toBeLessThan(3000);
    expect(plan).toHaveLength(Math.floor(speech / 10));
    expect(ratio(plan)).toBeLessThanOrEqual(2);
    expect(cuts(plan)).toBe(0);
  });

  it('rejects options out of range', () => {
    const regions = [{ start: 0, end: 5 }];
    expect(() => planSpeechChunks(regions, 10, { ...base, capacity: 0 })).toThrow(RangeError);
    expect(() => planSpeechChunks(regions, 10, { ...base, maxChunkSec: 0 })).toThrow(/maxChunkSec/);
    expect(() => planSpeechChunks(regions, 10, { ...base, gapSec: 200 })).toThrow(/gapSec/);
    expect(() => planSpeechChunks(regions, 10, { ...base, maxChunkSec: 2, overlapSec: 1 })).toThrow(/overlapSec/);
    expect(() => planSpeechChunks(regions, Number.NaN, base)).toThrow(/durationSec/);
  });
});

describe('time mapping of speech chunks', () => {
  const plan = planSpeechChunks([{ start: 2, end: 5 }, { start: 10, end: 14.5 }, { start: 60, end: 61.2 }], 90, { maxChunkSec: 120, capacity: 1, gapSec: 0.5 });
  const chunk = plan[0];

  it('maps chunk time linearly inside spans and to the nearer boundary inside gaps', () => {
    expect(toRecordingTime(chunk, 0)).toBe(2);
    expect(toRecordingTime(chunk, 1.25)).toBe(3.25);
    expect(toRecordingTime(chunk, 3)).toBe(5);
    // Gap 3–3.5 stands for the non-speech 5–10: first half → 5, from the middle on → 10.
    expect(toRecordingTime(chunk, 3.1)).toBe(5);
    expect(toRecordingTime(chunk, 3.25)).toBe(10);
    expect(toRecordingTime(chunk, 3.4)).toBe(10);
    expect(toRecordingTime(chunk, 3.5)).toBe(10);
    expect(toRecordingTime(chunk, 8)).toBe(14.5);
    expect(toRecordingTime(chunk, 9.7)).toBe(61.2);
    // Outside the chunk: clamped.
    expect(toRecordingTime(chunk, -1)).toBe(2);
    expect(toRecordingTime(chunk, 50)).toBe(61.2);
    expect([0, 3.24, 3.25, 8.5].map((t) => spanIndexAt(chunk, t))).toEqual([0, 0, 1, 2]);
    // Non-decreasing.
    let last = -Infinity;
    for (let t = -1; t < 12; t += 0.01) {
      const x = toRecordingTime(chunk, t);
      expect(x).toBeGreaterThanOrEqual(last);
      last = x;
    }
  });

  it('round-trips: one word per span at known chunk times maps back exactly to recording times', () => {
    const rand = random(5);
    const regions = layout(Array.from({ length: 200 }, () => r3(0.4 + rand() * 6)), () => r3(0.7 + rand() * 10));
    const duration = regions[regions.length - 1].end + 5;
    const chunks = planSpeechChunks(regions, duration, { maxChunkSec: 30, capacity: 4, gapSec: 0.5 });
    const expected: [number, number][] = [];
    const results = new Map<number, TranscriptionResult>();
    for (const c of chunks) {
      const words = c.spans.map((span, i) => {
        const [a, b] = [r3((span.end - span.start) * 0.25), r3((span.end - span.start) * 0.75)];
        expected.push([r3(span.start + a), r3(span.start + b)]);
        return word(`w${c.index}-${i}`, span.offset + a, span.offset + b);
      });
      const mapped = mapChunkResult(c, resultOf([segmentOf(words)]), duration);
      expect(mapped.segments.flatMap((s) => s.words).map((w) => [w.start, w.end])).toEqual(expected.slice(-words.length));
      // A segment never covers cut-out non-speech: one segment per span.
      expect(mapped.segments).toHaveLength(c.spans.length);
      results.set(c.index, resultOf([segmentOf(words)]));
    }
    const merged = mergeSpeechChunks(chunks, results, duration);
    expect(merged.segments.flatMap((s) => s.words).map((w) => [w.start, w.end])).toEqual(expected);
  });

  it('keeps every word exactly once across mid-speech cuts', () => {
    // One 400 s monologue: a word every 0.37 s, each 0.3 s long, so several straddle each cut.
    const truth: Word[] = [];
    for (let t = 20, i = 0; t + 0.3 <= 420; t += 0.37, i++) truth.push(word(`t${i}`, r3(t), r3(t + 0.3)));
    const duration = 440;
    const chunks = planSpeechChunks([{ start: 20, end: 420 }], duration, { maxChunkSec: 30, capacity: 2, gapSec: 0.5 });
    const cutPoints = chunks.slice(1).map((c) => c.spans[0].core_start);
    expect(cutPoints.length).toBeGreaterThan(5);
    expect(cutPoints.filter((x) => truth.some((w) => w.start < x && x < w.end)).length).toBeGreaterThan(0);

    // A faithful engine: hears every word wholly inside the chunk's audio, at chunk time.
    const results = new Map<number, TranscriptionResult>();
    for (const c of chunks) {
      const heard: Word[] = [];
      for (const span of c.spans) {
        for (const w of truth) {
          if (w.start >= span.start && w.end <= span.end) heard.push(word(w.word, r3(span.offset + w.start - span.start), r3(span.offset + w.end - span.start)));
        }
      }
      results.set(c.index, resultOf([segmentOf(heard)]));
    }
    const merged = mergeSpeechChunks([...chunks].reverse(), results, duration);
    const words = merged.segments.flatMap((s) => s.words);
    expect(words.map((w) => w.word)).toEqual(truth.map((w) => w.word));
    expect(words.map((w) => [w.start, w.end])).toEqual(truth.map((w) => [w.start, w.end]));
    expect(merged.text.split(' ')).toHaveLength(truth.length);
  });

  it('splits a segment that runs across a gap, keeps times monotonic and inside the recording', () => {
    const engine = resultOf([
      { ...segmentOf([word('hello', 0.5, 1), word('there', 1.2, 3.2), word('how', 3.6, 4), word('are', 4.1, 4.4)]), text: 'Hello there, how are' },
      { ...segmentOf([word('you', 8.6, 8.9), word('late', 9, 12)]), text: 'you late' },
      { start: 8.5, end: 9, text: 'no words', speaker_tag: null, confidence: null, words: [] },
    ], 'en', ['w1']);
    const mapped = mapChunkResult(chunk, engine, 61);
    expect(mapped.segments.map((s) => s.text)).toEqual(['hello there', 'how are', 'you late', 'no words']);
    // 'there' ran 0.2 s into the gap: it ends where the speech ended.
    expect(mapped.segments[0].words[1]).toMatchObject({ start: 3.2, end: 5 });
    expect(mapped.segments[1].words[0]).toMatchObject({ start: 10.1, end: 10.5 });
    expect(mapped.segments[2].words[0]).toMatchObject({ start: 60.1, end: 60.4 });
    // 'late' ran past the chunk: clamped to the span, then to the recording's duration.
    expect(mapped.segments[2].words[1]).toMatchObject({ start: 60.5, end: 61 });
    expect(mapped.duration_sec).toBe(61);
    expect(mapped.warnings).toEqual(['w1']);
    let last = 0;
    for (const s of mapped.segments) {
      expect(s.start).toBeGreaterThanOrEqual(last);
      expect(s.end).toBeLessThanOrEqual(61);
      expect(s.end).toBeGreaterThanOrEqual(s.start);
      last = s.start;
    }
  });

  it('merges chunk results: text in order, language by majority, warnings de-duplicated', () => {
    const rand = random(3);
    const regions = layout(Array.from({ length: 40 }, () => r3(3 + rand() * 5)), 2);
    const duration = regions[regions.length - 1].end + 1;
    const chunks = planSpeechChunks(regions, duration, { maxChunkSec: 60, capacity: 3, gapSec: 0.5 });
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    const results = new Map<number, TranscriptionResult>();
    for (const c of [...chunks].reverse()) {
      const span = c.spans[0];
      results.set(c.index, resultOf([segmentOf([word(`c${c.index}`, span.offset, span.offset + 0.5)])], c.index === 0 ? 'de' : 'en', ['model ignored prompt', `only ${c.index}`]));
    }
    const merged = mergeSpeechChunks(chunks, results, duration);
    expect(merged.text).toBe(chunks.map((c) => `c${c.index}`).join(' '));
    expect(merged.language).toBe('en');
    expect(merged.warnings.filter((w) => w === 'model ignored prompt')).toHaveLength(1);
    expect(merged.duration_sec).toBe(duration);
    expect(() => mergeSpeechChunks(chunks, new Map(), duration)).toThrow(/no result for speech chunk 0/);
  });
});
