import type { Segment, Word } from '../engine.spec.js';

/** `word start end posterior` as `pocketsphinx_continuous -time yes` prints it (seconds, posterior 0..1). */
const WORD_LINE = /^(\S+)\s+(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)$/i;

/** Tokens that mark utterance bounds, silence or fillers (`<s>`, `</s>`, `<sil>`, `[NOISE]`, `++BREATH++`). */
function isFiller(token: string): boolean {
  return token.startsWith('<') || token.startsWith('[') || token.startsWith('+');
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Parses the stdout of `pocketsphinx_continuous -infile F -time yes` into segments.
 *
 * Format (CMU pocketsphinx 5prealpha, Debian): for each utterance, one line with the hypothesis
 * text, then one line per token `word start end posterior` — times in seconds from the start of
 * the file. An utterance opens with `<s>` and closes with `</s>`. Alternate pronunciations carry a
 * suffix (`was(2)`) that is stripped; silence and filler tokens are dropped. Each utterance with
 * at least one word becomes one segment; the segment confidence is the mean word posterior.
 */
export function parsePocketsphinxOutput(stdout: string): Segment[] {
  const segments: Segment[] = [];
  let words: Word[] = [];
  const flush = () => {
    if (words.length > 0) {
      const confidences = words.map((w) => w.confidence ?? 0);
      segments.push({
        start: words[0].start,
        end: words[words.length - 1].end,
        text: words.map((w) => w.word).join(' '),
        speaker_tag: null,
        confidence: round3(confidences.reduce((a, b) => a + b, 0) / confidences.length),
        words,
      });
    }
    words = [];
  };
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    const m = WORD_LINE.exec(line);
    if (!m) continue; // hypothesis lines repeat the words; times come only from token lines
    const token = m[1];
    if (token === '<s>') {
      flush();
      continue;
    }
    if (token === '</s>') {
      flush();
      continue;
    }
    if (isFiller(token)) continue;
    const start = Number(m[2]);
    const end = Number(m[3]);
    words.push({
      word: token.replace(/\(\d+\)$/, ''),
      start: round3(start),
      end: round3(Math.max(start, end)),
      confidence: round3(clamp01(Number(m[4]))),
      speaker_tag: null,
    });
  }
  flush();
  return segments;
}
