import { Inject, Injectable } from '@nestjs/common';
import { UnknownEngineError } from './engine.error.js';
import { ENGINE_ALIASES, TRANSCRIPTION_ENGINES, type TranscriptionEngine } from './engine.spec.js';

// Defined with the module's other errors; exported here too, where the filters have always imported it from.
export { UnknownEngineError };

/**
 * Every enabled engine adapter, keyed by engine id.
 *
 * Built once at boot from the adapters provided under TRANSCRIPTION_ENGINES; two adapters with
 * the same id are a configuration bug and fail the boot.
 */
@Injectable()
export class EngineRegistry {
  private readonly engines = new Map<string, TranscriptionEngine>();

  constructor(@Inject(TRANSCRIPTION_ENGINES) engines: TranscriptionEngine[]) {
    for (const engine of engines) {
      if (this.engines.has(engine.id)) {
        throw new Error(`Two engine adapters are registered with the id '${engine.id}'; engine ids must be unique.`);
      }
      this.engines.set(engine.id, engine);
    }
  }

  /** Engine ids in registration order. */
  ids(): string[] {
    return [...this.engines.keys()];
  }

  all(): TranscriptionEngine[] {
    return [...this.engines.values()];
  }

  /** Resolves seed aliases (`asr` → `riva`) and trims/lower-cases the name; does not check existence. */
  static canonicalId(name: string): string {
    const id = name.trim().toLowerCase();
    return ENGINE_ALIASES[id] ?? id;
  }

  has(name: string): boolean {
    return this.engines.has(EngineRegistry.canonicalId(name));
  }

  /**
   * @throws UnknownEngineError listing the registered ids when `name` (after alias resolution) is not registered.
   */
  get(name: string): TranscriptionEngine {
    const engine = this.engines.get(EngineRegistry.canonicalId(name));
    if (!engine) throw new UnknownEngineError(name, this.ids());
    return engine;
  }
}
