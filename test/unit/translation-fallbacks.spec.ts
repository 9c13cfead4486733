import { EngineRegistry } from '../../src/engines/engine-registry.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { RivaEngine } from '../../src/engines/riva/riva.engine.js';
import { EngineFallbacks } from '../../src/transcription/engine-fallbacks.js';
import { testConfig } from '../support/env.js';

/** The real adapters, built as in production (nothing is contacted). */
const { engines } = buildEngines({
  WHISPERX_SERVICE_URL: 'http://whisperx:9000',
  WHISPER_ROCM_URL: 'http://whisper-rocm:9000',
  RIVA_URI: 'parakeet-nim:50051',
});

afterAll(() => {
  for (const e of engines) if (e instanceof RivaEngine) e.close();
});

describe('ENGINE_FALLBACKS for a translation', () => {
  const fallbacks = new EngineFallbacks(testConfig({ ENGINE_FALLBACKS: 'whisperx:pocketsphinx,whisper-rocm,riva;whisper-rocm:pocketsphinx' }), new EngineRegistry(engines));

  it('keeps only engines that can translate: another would return the spoken language as the translation', () => {
    expect(fallbacks.of('whisperx', 'translate')).toEqual(['whisper-rocm']);
    expect(fallbacks.of('whisper-rocm', 'translate')).toEqual([]);
  });

  it('keeps the whole chain for a transcription (the default task)', () => {
    expect(fallbacks.of('whisperx', 'transcribe')).toEqual(['pocketsphinx', 'whisper-rocm', 'riva']);
    expect(fallbacks.of('whisperx')).toEqual(['pocketsphinx', 'whisper-rocm', 'riva']);
  });
});
