import { toWordBoosts } from '../../src/contexts/contexts.dto.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import type { RivaRecognizeResponse } from '../../src/engines/riva/riva.client.js';
import { parseRivaEnv, parseRivaMetadata, rivaEnabled } from '../../src/engines/riva/riva.config.js';
import { mapRivaResponse, resolveRivaLanguage, RivaEngine, toSpeechContexts } from '../../src/engines/riva/riva.engine.js';

describe('mapRivaResponse', () => {
  const word = (start_time: number, end_time: number, w: string, extra: Partial<{ confidence: number; speaker_tag: number }> = {}) => ({
    start_time, end_time, word: w, confidence: 0.9, speaker_tag: 0, language_code: '', ...extra,
  });
  const response = (results: unknown[]) => ({ results, id: null }) as unknown as RivaRecognizeResponse;
  const result = (transcript: string, words: unknown[], extra: Record<string, unknown> = {}) => ({
    alternatives: [{ transcript, confidence: 0, words, language_code: [] }], channel_tag: 0, audio_processed: 0, ...extra,
  });

  it('keeps word times non-decreasing and within the audio, and confidences within 0..1 (else null)', () => {
    const { segments } = mapRivaResponse(
      response([result('a b c', [word(500, 400, 'a', { confidence: 1.7 }), word(300, 900, 'b', { confidence: 0 }), word(2900, 3500, 'c', { confidence: 0.3333 })])]),
      { durationSec: 3, diarization: false },
    );
    expect(segments[0].words).toEqual([
      { word: 'a', start: 0.5, end: 0.5, confidence: null, speaker_tag: null },
      { word: 'b', start: 0.5, end: 0.9, confidence: null, speaker_tag: null },
      { word: 'c', start: 2.9, end: 3, confidence: 0.333, speaker_tag: null },
    ]);
    expect(segments[0]).toMatchObject({ start: 0.5, end: 3, confidence: 0.333 });
  });

  it('speaker tag 0 stays unattributed; tags are ignored when diarization was not asked for', () => {
    const words = [word(0, 100, 'x', { speaker_tag: 0 }), word(100, 200, 'y', { speaker_tag: 3 })];
    expect(mapRivaResponse(response([result('x y', words)]), { durationSec: 1, diarization: true }).segments[0].words.map((w) => w.speaker_tag)).toEqual([null, 2]);
    expect(mapRivaResponse(response([result('x y', words)]), { durationSec: 1, diarization: true }).segments[0].speaker_tag).toBe(2);
    expect(mapRivaResponse(response([result('x y', words)]), { durationSec: 1, diarization: false }).segments[0].speaker_tag).toBeNull();
  });

  it('skips empty results, spans a result without words up to its audio_processed, and reports the language', () => {
    const { segments, language } = mapRivaResponse(
      response([
        { alternatives: [], channel_tag: 0, audio_processed: 1 },
        result('', []),
        result('hello there', [word(1000, 1400, 'hello'), word(1500, 1900, 'there')], { alternatives: [{ transcript: 'hello there', confidence: 0.8, words: [word(1000, 1400, 'hello'), word(1500, 1900, 'there')], language_code: ['en-GB'] }] }),
        result('no words here', [], { audio_processed: 4.2 }),
      ]),
      { durationSec: 4, diarization: false },
    );
    expect(language).toBe('en-GB');
    expect(segments.map((s) => [s.text, s.start, s.end])).toEqual([
      ['hello there', 1, 1.9],
      ['no words here', 1.9, 4],
    ]);
    expect(segments[1].confidence).toBeNull();
  });

  it('throws on a response that is not a RecognizeResponse', () => {
    expect(() => mapRivaResponse({} as RivaRecognizeResponse, { durationSec: 1, diarization: false })).toThrow(/results/);
  });
});

describe('request helpers', () => {
  it('resolveRivaLanguage: BCP-47 as given; a bare language takes the default or a code the server reported', () => {
    expect(resolveRivaLanguage(undefined, 'en-US')).toBe('en-US');
    expect(resolveRivaLanguage('en', 'en-US')).toBe('en-US');
    expect(resolveRivaLanguage('es-ES', 'en-US')).toBe('es-ES');
    expect(resolveRivaLanguage('de', 'en-US', ['en-US', 'de-DE'])).toBe('de-DE');
    expect(resolveRivaLanguage('fr', 'en-US', ['en-US'])).toBe('fr');
  });

  it('toSpeechContexts drops empty phrases and groups; toWordBoosts groups a context by boost level', () => {
    expect(toSpeechContexts([{ phrases: [' a ', ''], boost: 10 }, { phrases: [' '], boost: 5 }])).toEqual([{ phrases: ['a'], boost: 10 }]);
    expect(toSpeechContexts(undefined)).toEqual([]);
    expect(
      toWordBoosts({ boost: 20, phrases: [{ phrase: 'a', boost: null }, { phrase: 'b', boost: -5 }, { phrase: 'c', boost: 20 }, { phrase: 'a', boost: 20 }] }),
    ).toEqual([
      { phrases: ['a', 'c'], boost: 20 },
      { phrases: ['b'], boost: -5 },
    ]);
  });
});

describe('riva configuration', () => {
  it('is enabled by RIVA_ENABLED=true, or by RIVA_URI unless RIVA_ENABLED=false', () => {
    expect(rivaEnabled({})).toBe(false);
    expect(rivaEnabled({ RIVA_URI: 'riva:50051' })).toBe(true);
    expect(rivaEnabled({ RIVA_URI: 'riva:50051', RIVA_ENABLED: 'false' })).toBe(false);
    expect(rivaEnabled({ RIVA_ENABLED: 'true' })).toBe(true);
    expect(buildEngines({}).engines.map((e) => e.id)).not.toContain('riva');
    const built = buildEngines({ RIVA_ENABLED: 'true', POCKETSPHINX_ENABLED: 'false' });
    expect(built.problems).toEqual([]);
    const riva = built.engines.find((e) => e.id === 'riva') as RivaEngine;
    expect(riva.capabilities).toEqual({
      diarization: true,
      word_boosting: true,
      word_timestamps: true,
      language_detection: false,
      translation: false,
      languages: ['en-US'],
      models: [],
      max_duration_sec: 2088,
      chunking_threshold_sec: 300,
      chunk_duration_sec: 120,
    });
    riva.close();
  });

  it('reports every bad variable, including chunks that would not fit the send limit', () => {
    const { problems } = buildEngines({
      RIVA_URI: 'no-port',
      RIVA_METADATA: 'just-a-token',
      RIVA_DEADLINE_MS: '10',
      POCKETSPHINX_ENABLED: 'false',
    });
    expect(problems).toEqual([
      expect.stringMatching(/RIVA_URI must be host:port/),
      expect.stringMatching(/RIVA_METADATA must be comma-separated key=value pairs/),
      expect.stringMatching(/RIVA_DEADLINE_MS must not be less than 100/),
    ]);
    // 4 MiB send limit: 120 s chunks (3.84 MB) fit, the 300 s threshold (9.6 MB) does not.
    expect(parseRivaEnv({ RIVA_URI: 'r:1', RIVA_MAX_SEND_MESSAGE_BYTES: String(4 * 1024 * 1024) }).problems).toEqual([
      expect.stringMatching(/^RIVA_CHUNKING_THRESHOLD=300 s .* at most 122 s$/),
    ]);
    expect(parseRivaEnv({ RIVA_URI: 'r:1', RIVA_MAX_SEND_MESSAGE_BYTES: String(2 * 1024 * 1024), RIVA_CHUNKING_THRESHOLD: '60' }).problems).toEqual([
      expect.stringMatching(/^RIVA_CHUNK_DURATION=120 s is 3840000 bytes .* at most 57 s$/),
      expect.stringMatching(/^RIVA_CHUNKING_THRESHOLD=60 s .* at most 57 s$/),
      expect.stringMatching(/must not exceed RIVA_CHUNKING_THRESHOLD/),
    ]);
    expect(parseRivaEnv({ RIVA_URI: 'r:1', RIVA_USE_SSL: 'true', RIVA_SSL_CA_FILE: '/nonexistent/ca.pem' }).problems).toEqual([expect.stringMatching(/cannot be read/)]);
  });

  it('parses RIVA_METADATA into lower-case keys, values running to the next comma', () => {
    expect(parseRivaMetadata('Authorization=Bearer nvapi-x==, function-id = abc-1')).toEqual([
      ['authorization', 'Bearer nvapi-x=='],
      ['function-id', 'abc-1'],
    ]);
    expect(parseRivaMetadata(undefined)).toEqual([]);
  });
});
