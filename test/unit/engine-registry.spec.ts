import { EngineRegistry, UnknownEngineError } from '../../src/engines/engine-registry.js';
import type { TranscriptionEngine } from '../../src/engines/engine.spec.js';
import { PocketsphinxEngine } from '../../src/engines/pocketsphinx/pocketsphinx.engine.js';
import { PocketsphinxConfig } from '../../src/engines/pocketsphinx/pocketsphinx.config.js';

const pocketsphinx = () => new PocketsphinxEngine(new PocketsphinxConfig());
const named = (id: string): TranscriptionEngine => Object.assign(Object.create(PocketsphinxEngine.prototype), pocketsphinx(), { id });

describe('EngineRegistry', () => {
  it('fails at construction when two adapters share an id', () => {
    expect(() => new EngineRegistry([pocketsphinx(), pocketsphinx()])).toThrow(/'pocketsphinx'.*unique/);
  });

  it('lists the registered engines when a lookup misses', () => {
    const registry = new EngineRegistry([pocketsphinx(), named('whisper-rocm')]);
    expect(() => registry.get('whisperx')).toThrow(UnknownEngineError);
    expect(() => registry.get('whisperx')).toThrow("Unknown engine 'whisperx'. Available engines: pocketsphinx, whisper-rocm.");
  });

  it('resolves the seed alias asr to riva and normalises case', () => {
    const registry = new EngineRegistry([named('riva')]);
    expect(registry.get('asr').id).toBe('riva');
    expect(registry.get(' RIVA ').id).toBe('riva');
    expect(registry.has('pocketsphinx')).toBe(false);
  });
});
