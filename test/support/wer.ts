import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FIXTURES } from './env.js';

/** Lower case, no punctuation (apostrophes inside words kept), single spaces — the references.trn convention. */
export function normalizeText(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9'\s]/g, ' ')
    .replace(/(^|\s)'|'(\s|$)/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/** Word-level Levenshtein distance (substitutions + deletions + insertions). */
export function editDistance(ref: string[], hyp: string[]): number {
  let prev = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const cur = [i];
    for (let j = 1; j <= hyp.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ref[i - 1] === hyp[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[hyp.length];
}

/**
 * Word error rate over a set of utterances: total edit distance / total reference words
 * (the pooled definition sclite uses).
 */
export function wordErrorRate(pairs: { reference: string; hypothesis: string }[]): number {
  let errors = 0;
  let words = 0;
  for (const { reference, hypothesis } of pairs) {
    const ref = normalizeText(reference);
    errors += editDistance(ref, normalizeText(hypothesis));
    words += ref.length;
  }
  return words === 0 ? 0 : errors / words;
}

/** Reference transcripts from fixtures/audio/references.trn (`text (id)` per line), by id. */
export function references(): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of readFileSync(path.join(FIXTURES, 'references.trn'), 'utf8').split('\n')) {
    const m = /^(.*)\s+\(([^)]+)\)\s*$/.exec(line.trim());
    if (m) map.set(m[2], m[1].trim());
  }
  return map;
}
