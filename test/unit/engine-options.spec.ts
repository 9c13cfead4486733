import { GatewayError } from '../../src/common/gateway-error.js';
import { EngineOptionError } from '../../src/engines/engine.error.js';
import { checkEngineOptions, checkEngineTask, languageSupported } from '../../src/engines/engine-options.js';
import type { TranscriptionEngine } from '../../src/engines/engine.spec.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { RivaEngine } from '../../src/engines/riva/riva.engine.js';

/** The real adapters, built from the environment as in production (nothing is contacted). */
const { engines, problems } = buildEngines({
  WHISPERX_SERVICE_URL: 'http://whisperx:9000',
  WHISPERX_AVAILABLE_MODELS: 'base,large-v3',
  WHISPER_ROCM_URL: 'http://whisper-rocm:9000',
  OPENAI_ENABLED: 'true',
  OPENAI_API_KEY: 'sk-test',
  RIVA_URI: 'parakeet-nim:50051',
  RIVA_MODEL: 'parakeet-1.1b-en-US-asr-offline-asr-bls-ensemble',
});
const engine = (id: string): TranscriptionEngine => engines.find((e) => e.id === id)!;

afterAll(() => {
  for (const e of engines) if (e instanceof RivaEngine) e.close();
});

function rejection(id: string, options: { model?: string; language?: string }): EngineOptionError {
  try {
    checkEngineOptions(engine(id), options);
  } catch (err) {
    expect(err).toBeInstanceOf(EngineOptionError);
    return err as EngineOptionError;
  }
  throw new Error(`expected ${id} to refuse ${JSON.stringify(options)}`);
}

describe('checkEngineOptions with the real adapters\' capabilities', () => {
  it('builds every engine', () => {
    expect(problems).toEqual([]);
    expect(engines.map((e) => e.id).sort()).toEqual(['openai', 'pocketsphinx', 'riva', 'whisper-rocm', 'whisperx']);
  });

  it('accepts absent options on every engine', () => {
    for (const e of engines) expect(() => checkEngineOptions(e, {})).not.toThrow();
  });

  it('refuses a model the engine does not offer: 400 INVALID_OPTION naming the engine and its models', () => {
    const error = rejection('whisperx', { model: 'medium' });
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ status: 400, code: 'INVALID_OPTION', retryable: false });
    expect(error.message).toBe("model 'medium' is not available for engine whisperx; available models: base, large-v3");
    expect(error.toPublic()).toEqual({ code: 'INVALID_OPTION', message: error.message, engine: 'whisperx', option: 'model', available_models: ['base', 'large-v3'] });
    expect(rejection('pocketsphinx', { model: 'large-v3' }).message).toBe("model 'large-v3' is not available for engine pocketsphinx; available models: en-us");
    expect(rejection('riva', { model: 'conformer' }).toPublic()).toMatchObject({ available_models: ['parakeet-1.1b-en-US-asr-offline-asr-bls-ensemble'] });
    expect(rejection('whisper-rocm', { model: 'large-v3' }).toPublic()).toMatchObject({ available_models: ['whisper-1'] });
  });

  it('accepts the models the engines list', () => {
    expect(() => checkEngineOptions(engine('whisperx'), { model: 'large-v3' })).not.toThrow();
    expect(() => checkEngineOptions(engine('pocketsphinx'), { model: 'en-us' })).not.toThrow();
    expect(() => checkEngineOptions(engine('openai'), { model: 'whisper-1' })).not.toThrow();
  });

  it('accepts any model on an engine that does not select models (Riva without RIVA_MODEL)', () => {
    const riva = buildEngines({ RIVA_URI: 'parakeet-nim:50051', POCKETSPHINX_ENABLED: 'false' }).engines[0] as RivaEngine;
    try {
      expect(riva.capabilities.models).toEqual([]);
      expect(() => checkEngineOptions(riva, { model: 'anything' })).not.toThrow();
    } finally {
      riva.close();
    }
  });

  it('takes Whisper languages as ISO-639-1, BCP-47 or Whisper\'s own spellings on the Whisper engines', () => {
    for (const id of ['whisperx', 'whisper-rocm', 'openai']) {
      for (const language of ['en', 'en-US', 'pt_BR', 'DE', 'yue', 'haw', 'jv', 'nb-NO', 'iw', 'zh-Hant-TW']) {
        expect(() => checkEngineOptions(engine(id), { language })).not.toThrow();
      }
      expect(() => checkEngineOptions(engine(id), { language: 'auto' })).not.toThrow();
    }
  });

  it('refuses a language Whisper does not know, listing the languages and saying detection is the alternative', () => {
    const error = rejection('whisperx', { language: 'xx-YY' });
    expect(error.message).toMatch(/^language 'xx-YY' is not available for engine whisperx; available languages: en, zh, de, .*, yue; or leave language out to have it detected$/);
    expect(error.toPublic()).toMatchObject({ engine: 'whisperx', option: 'language' });
    expect((error.toPublic().languages as string[])).toHaveLength(100);
    expect(() => checkEngineOptions(engine('whisper-rocm'), { language: 'tlh' })).toThrow(EngineOptionError);
  });

  it('takes the regional code\'s language on engines that name languages with a region (pocketsphinx en-US, Riva)', () => {
    expect(() => checkEngineOptions(engine('pocketsphinx'), { language: 'en' })).not.toThrow();
    expect(() => checkEngineOptions(engine('pocketsphinx'), { language: 'en-us' })).not.toThrow();
    expect(() => checkEngineOptions(engine('riva'), { language: 'en-US' })).not.toThrow();
    const german = rejection('pocketsphinx', { language: 'de' });
    expect(german.message).toBe("language 'de' is not available for engine pocketsphinx; available languages: en-US");
    expect(german.toPublic()).toMatchObject({ languages: ['en-US'] });
    // Engines without language detection have no 'auto'.
    expect(() => checkEngineOptions(engine('riva'), { language: 'auto' })).toThrow(EngineOptionError);
    expect(() => checkEngineOptions(engine('pocketsphinx'), { language: 'en-GB' })).toThrow(EngineOptionError);
  });

  it('accepts any language on an engine that does not list languages', () => {
    const unlisted = { id: 'custom', capabilities: { ...engine('pocketsphinx').capabilities, languages: [] } };
    expect(() => checkEngineOptions(unlisted, { language: 'tlh' })).not.toThrow();
  });
});

describe('languageSupported', () => {
  it.each([
    ['en-US', ['en'], true],
    ['en_GB', ['en'], true],
    ['de', ['en-US', 'es-US', 'de-DE'], true],
    ['es-US', ['en-US', 'es-US', 'de-DE'], true],
    ['es-ES', ['en-US', 'es-US', 'de-DE'], false],
    ['fr', ['en-US', 'es-US', 'de-DE'], false],
    ['jv', ['jw'], true],
    ['multi', ['multi'], true],
  ])('%s in %j → %s', (language, supported, expected) => {
    expect(languageSupported(language, supported)).toBe(expected);
  });
});

describe('checkEngineTask (task=translate) with the real adapters\' capabilities', () => {
  it('whisper-rocm, whisperx and openai translate; pocketsphinx and riva do not', () => {
    const flags = Object.fromEntries(engines.map((e) => [e.id, e.capabilities.translation]));
    expect(flags).toEqual({ pocketsphinx: false, whisperx: true, 'whisper-rocm': true, openai: true, riva: false });
  });

  it('accepts transcribe (or no task) on every engine, and translate on the engines that can', () => {
    for (const e of engines) {
      expect(() => checkEngineTask(e, undefined, engines)).not.toThrow();
      expect(() => checkEngineTask(e, 'transcribe', engines)).not.toThrow();
    }
    for (const id of ['whisper-rocm', 'whisperx', 'openai']) expect(() => checkEngineTask(engine(id), 'translate', engines)).not.toThrow();
  });

  it.each(['pocketsphinx', 'riva'])('refuses translate on %s: 400 INVALID_OPTION naming the enabled engines that can', (id) => {
    let error: unknown;
    try {
      checkEngineTask(engine(id), 'translate', engines);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(EngineOptionError);
    const e = error as EngineOptionError;
    expect(e).toMatchObject({ status: 400, code: 'INVALID_OPTION', retryable: false });
    expect(e.message).toBe(`engine ${id} cannot translate (task=translate); engines that can: whisperx, whisper-rocm, openai; or send task=transcribe for a transcript in the spoken language`);
    expect(e.toPublic()).toMatchObject({ engine: id, option: 'task', translation_engines: ['whisperx', 'whisper-rocm', 'openai'] });
  });

  it('says so when no enabled engine can translate', () => {
    const only = [engine('pocketsphinx')];
    expect(() => checkEngineTask(only[0], 'translate', only)).toThrow('engines that can: (none enabled)');
  });

  it('OPENAI_TRANSLATION=false turns translation off for the openai engine (servers or models without /v1/audio/translations)', () => {
    const off = buildEngines({ OPENAI_ENABLED: 'true', OPENAI_API_KEY: 'sk-test', OPENAI_TRANSLATION: 'false' });
    expect(off.problems).toEqual([]);
    expect(off.engines.find((e) => e.id === 'openai')!.capabilities.translation).toBe(false);
    expect(buildEngines({ OPENAI_ENABLED: 'true', OPENAI_API_KEY: 'sk-test', OPENAI_TRANSLATION: 'maybe' }).problems.join(' ')).toContain('OPENAI_TRANSLATION');
  });
});
