import { readFileSync } from 'node:fs';
import path from 'node:path';
import { languageCodeFromReport, WHISPER_LANGUAGE_CODES, WHISPER_LANGUAGES, whisperLanguageCode, whisperLanguageName } from '../../src/engines/whisper-languages.js';
import { languageName } from '../../src/openai-api/languages.js';

describe('Whisper languages (one table, one alias rule)', () => {
  it('is the table the project\'s whisper-rocm service ships, in the same order', () => {
    const python = readFileSync(path.resolve('engines/whisper-rocm/whisper_rocm_service/languages.py'), 'utf8');
    const service = [...python.matchAll(/^\s+"([a-z]{2,3})": "([a-z ]+)",$/gm)].map((m) => [m[1], m[2]]);
    expect(service).toHaveLength(100);
    expect(Object.entries(WHISPER_LANGUAGES)).toEqual(service);
    expect(WHISPER_LANGUAGE_CODES).toHaveLength(100);
  });

  it.each([
    ['en', 'en'], ['EN', 'en'], ['en-US', 'en'], ['pt_BR', 'pt'], ['zh-Hant-TW', 'zh'], ['yue', 'yue'], ['haw', 'haw'],
    ['english', 'en'], ['English', 'en'], ['castilian', 'es'], ['mandarin', 'zh'], ['haitian creole', 'ht'],
    ['jv', 'jw'], ['jw', 'jw'], ['nb-NO', 'no'], ['iw', 'he'], ['in', 'id'], ['fil', 'tl'],
    ['xx-YY', null], ['klingon', null], ['', null], ['auto', null],
  ])('whisperLanguageCode(%j) → %j', (input, code) => {
    expect(whisperLanguageCode(input)).toBe(code);
  });

  it('names a code by the same rule', () => {
    expect(whisperLanguageName('en-US')).toBe('english');
    expect(whisperLanguageName('jv')).toBe('javanese');
    expect(whisperLanguageName('nb')).toBe('norwegian');
    expect(whisperLanguageName('xx')).toBeNull();
  });

  it('maps what a server reports (names or codes) back to a code, keeping unknown values', () => {
    expect(languageCodeFromReport('english')).toBe('en');
    expect(languageCodeFromReport('de')).toBe('de');
    expect(languageCodeFromReport('Klingon')).toBe('klingon');
    expect(languageCodeFromReport('')).toBeNull();
    expect(languageCodeFromReport(undefined)).toBeNull();
  });

  it('gives the OpenAI API its language names from the same table', () => {
    expect(languageName('en-US')).toBe('english');
    expect(languageName('jv')).toBe('javanese');
    expect(languageName('nb')).toBe('norwegian');
    expect(languageName('XX-yy')).toBe('xx-yy');
    expect(languageName(undefined)).toBe('unknown');
  });
});
