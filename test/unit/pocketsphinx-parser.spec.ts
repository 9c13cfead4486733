import { parsePocketsphinxOutput } from '../../src/engines/pocketsphinx/pocketsphinx.parser.js';

// Captured from `pocketsphinx_continuous -infile x.wav -time yes` (Debian 5prealpha) on two utterances.
const OUTPUT = `he was not an illness closed young man
<s> 0.140 0.220 0.999900
he 0.230 0.330 0.993322
was(2) 0.340 0.560 0.993222
not 0.570 0.980 0.998501
[SPEECH] 0.990 1.120 0.527464
an(2) 1.130 1.300 0.547020
<sil> 1.310 1.400 0.9
man 2.350 2.800 0.753797
</s> 2.810 3.100 1.000000
go forward ten meters
<s> 6.100 6.450 1.000200
go 6.460 6.630 0.963768
++NOISE++ 6.630 6.640 0.5
meters 7.530 8.110 1.000200
</s> 8.120 8.600 1.000000
`;

describe('parsePocketsphinxOutput', () => {
  const segments = parsePocketsphinxOutput(OUTPUT);

  it('makes one segment per utterance with its words in order', () => {
    expect(segments).toHaveLength(2);
    expect(segments[0].words.map((w) => w.word)).toEqual(['he', 'was', 'not', 'an', 'man']);
    expect(segments[1].text).toBe('go meters');
  });

  it('drops utterance marks, silence and fillers, and strips pronunciation variants', () => {
    const words = segments.flatMap((s) => s.words.map((w) => w.word));
    for (const w of words) expect(w).toMatch(/^[a-z']+$/);
    expect(words).not.toContain('was(2)');
  });

  it('keeps times in seconds from the start of the file and clamps posteriors to 0..1', () => {
    expect(segments[1].start).toBeCloseTo(6.46, 3);
    expect(segments[1].end).toBeCloseTo(8.11, 3);
    expect(segments[1].words[1].confidence).toBe(1);
    expect(segments[0].confidence).toBeCloseTo((0.993322 + 0.993222 + 0.998501 + 0.54702 + 0.753797) / 5, 2);
  });

  it('returns no segments for output without words', () => {
    expect(parsePocketsphinxOutput('')).toEqual([]);
    expect(parsePocketsphinxOutput('\n<s> 0.000 0.100 1.0\n<sil> 0.1 0.5 1.0\n</s> 0.5 0.6 1.0\n')).toEqual([]);
  });
});
