import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { parseEnv } from '../config/app-config.js';
import { EngineHealthService } from './engine-health.service.js';
import { EngineRegistry } from './engine-registry.js';
import { TRANSCRIPTION_ENGINES, type TranscriptionEngine } from './engine.spec.js';
import { PocketsphinxConfig } from './pocketsphinx/pocketsphinx.config.js';
import { PocketsphinxEngine } from './pocketsphinx/pocketsphinx.engine.js';
import { parseRivaEnv } from './riva/riva.config.js';
import { RivaEngine } from './riva/riva.engine.js';
import { isOpenAiEnabled, isWhisperRocmEnabled, OpenAiConfig, openAiInstance, WhisperRocmConfig, whisperRocmInstance } from './openai-compatible/openai-compatible.config.js';
import { OpenAiCompatibleEngine } from './openai-compatible/openai-compatible.engine.js';
import { isWhisperxEnabled, WhisperxConfig } from './whisperx/whisperx.config.js';
import { WhisperxEngine } from './whisperx/whisperx.engine.js';

/**
 * Validates every enabled engine's environment section and builds its adapter.
 * Engine variables are validated only when that engine is enabled.
 *
 * @returns the adapters and every problem found (so boot can report them in one error).
 */
export function buildEngines(env: NodeJS.ProcessEnv = process.env): { engines: TranscriptionEngine[]; problems: string[] } {
  const engines: TranscriptionEngine[] = [];
  const problems: string[] = [];
  const pocketsphinx = parseEnv(PocketsphinxConfig, env);
  if (pocketsphinx.value.POCKETSPHINX_ENABLED !== 'false') {
    problems.push(...pocketsphinx.problems);
    engines.push(new PocketsphinxEngine(pocketsphinx.value));
  }
  if (isWhisperxEnabled(env)) {
    const whisperx = parseEnv(WhisperxConfig, env);
    problems.push(...whisperx.problems);
    engines.push(new WhisperxEngine(whisperx.value));
  }
  if (isWhisperRocmEnabled(env)) {
    const whisperRocm = parseEnv(WhisperRocmConfig, env);
    problems.push(...whisperRocm.problems);
    engines.push(new OpenAiCompatibleEngine(whisperRocmInstance(whisperRocm.value)));
  }
  if (isOpenAiEnabled(env)) {
    const openai = parseEnv(OpenAiConfig, env);
    problems.push(...openai.problems);
    engines.push(new OpenAiCompatibleEngine(openAiInstance(openai.value)));
  }
  const riva = parseRivaEnv(env);
  if (riva.enabled) {
    problems.push(...riva.problems);
    if (riva.problems.length === 0) engines.push(new RivaEngine(riva.value));
  }
  return { engines, problems };
}

/**
 * Engine adapters, their registry and (optionally) cached health probes.
 * Depends on nothing but config: jobs use engines, never the other way round.
 */
@Module({})
export class EnginesModule {
  /**
   * @param engines adapters built by buildEngines (or test-provided adapters speaking to test servers).
   * @param options.probeHealth run periodic health probes (API role; workers do not need them).
   */
  static register(engines: TranscriptionEngine[], options: { probeHealth: boolean }): DynamicModule {
    const providers: Provider[] = [{ provide: TRANSCRIPTION_ENGINES, useValue: engines }, EngineRegistry];
    if (options.probeHealth) providers.push(EngineHealthService);
    return {
      module: EnginesModule,
      providers,
      exports: options.probeHealth ? [EngineRegistry, EngineHealthService] : [EngineRegistry],
    };
  }
}
