import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import type { EngineTask } from '../engines/engine.spec.js';

/**
 * Parses ENGINE_FALLBACKS once at boot: `from:to1,to2;from2:to3`, engine ids or aliases.
 * @returns canonical engine id → the registered engines to fall back to, in order (the engine
 *   itself and engines this process does not have are left out).
 */
export function parseFallbacks(spec: string, registered: (id: string) => boolean): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  for (const rule of spec.split(';').map((r) => r.trim()).filter(Boolean)) {
    const [from, to = ''] = rule.split(':');
    const engine = EngineRegistry.canonicalId(from.trim());
    if (chains.has(engine)) continue;
    chains.set(engine, to.split(',').map((id) => EngineRegistry.canonicalId(id.trim())).filter((id) => id && id !== engine && registered(id)));
  }
  return chains;
}

/** The fallback chains of ENGINE_FALLBACKS (README "Fallbacks"), parsed once. */
@Injectable()
export class EngineFallbacks {
  private readonly chains: Map<string, string[]>;

  constructor(config: AppConfig, private readonly registry: EngineRegistry) {
    this.chains = parseFallbacks(config.ENGINE_FALLBACKS, (id) => registry.has(id));
  }

  /**
   * Engines to fall back to from `engineId` (canonical), in order; empty when none. For a
   * translation only engines that can translate: another one would return a transcript in the
   * spoken language as if it were the English translation.
   */
  of(engineId: string, task: EngineTask = 'transcribe'): string[] {
    const chain = this.chains.get(engineId) ?? [];
    return task === 'translate' ? chain.filter((id) => this.registry.get(id).capabilities.translation) : chain;
  }
}
