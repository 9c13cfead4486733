import { editDistance, normalizeText, wordErrorRate } from '../support/wer.js';

describe('WER scorer', () => {
  it('normalises case and punctuation like references.trn', () => {
    expect(normalizeText("And so, my fellow Americans: ask NOT — it's")).toEqual(['and', 'so', 'my', 'fellow', 'americans', 'ask', 'not', "it's"]);
  });

  it('counts substitutions, deletions and insertions', () => {
    expect(editDistance(['a', 'b', 'c'], ['a', 'x', 'c'])).toBe(1);
    expect(editDistance(['a', 'b', 'c'], ['a', 'c'])).toBe(1);
    expect(editDistance(['a', 'b'], ['a', 'b', 'c', 'd'])).toBe(2);
    expect(editDistance([], ['a'])).toBe(1);
  });

  it('pools errors over reference words', () => {
    expect(wordErrorRate([{ reference: 'a b c d', hypothesis: 'a b c d' }, { reference: 'e f', hypothesis: 'e' }])).toBeCloseTo(1 / 6);
    expect(wordErrorRate([{ reference: 'go forward', hypothesis: '' }])).toBe(1);
  });
});
