import { EngineOptionError } from './engine.error.js';
import type { EngineTask, TranscriptionEngine } from './engine.spec.js';
import { whisperLanguageCode } from './whisper-languages.js';

/** The request options checked against an engine's capabilities. */
export interface CheckedEngineOptions {
  /** Model name as the request gives it (matched exactly). */
  model?: string;
  /** Language as the request gives it: ISO-639-1 (`en`) or BCP-47 (`en-US`); `_` counts as `-`. */
  language?: string;
}

const normalize = (tag: string) => tag.trim().toLowerCase().replace(/_/g, '-');

/**
 * Whether `language` is one of `supported`, by the rules the adapters themselves apply when they
 * send it, so that what passes here is what the engine will take:
 * - the same code, ignoring case (`en-US` = `en-us`);
 * - a bare code in the list (Whisper's `en`) takes any tag of that language (`en-US`, `en_GB`),
 *   and Whisper's spellings (`jv` → `jw`, `nb` → `no`, `iw` → `he`; see whisperLanguageCode);
 * - a bare requested code (`de`) takes the first regional code of that language in the list
 *   (Riva's `de-DE`), as resolveRivaLanguage does.
 */
export function languageSupported(language: string, supported: readonly string[]): boolean {
  const requested = normalize(language);
  const primary = requested.split('-')[0];
  const whisper = whisperLanguageCode(language);
  return supported.some((entry) => {
    const code = normalize(entry);
    if (code === requested) return true;
    if (!code.includes('-') && (code === primary || code === whisper)) return true;
    return !requested.includes('-') && code.split('-')[0] === requested;
  });
}

/**
 * Checks, at submit time, that an engine offers the requested model and language, so that a job
 * the engine would refuse is never accepted. Pure: reads only `engine.id` and
 * `engine.capabilities`.
 *
 * - `model`: must be one of `capabilities.models`, exactly. An engine with an empty list does not
 *   select models per request and accepts any (it warns that it ignored it).
 * - `language`: must be supported by `capabilities.languages` (see languageSupported). An empty
 *   list accepts any language; `auto` is accepted by engines with `language_detection`.
 * - Absent options are the engine's defaults and always accepted.
 *
 * @throws EngineOptionError (400, code INVALID_OPTION) naming the engine and listing what it
 *   accepts, in the message and as public fields: `{engine, option: 'model', available_models}`
 *   or `{engine, option: 'language', languages}`.
 */
export function checkEngineOptions(engine: Pick<TranscriptionEngine, 'id' | 'capabilities'>, options: CheckedEngineOptions): void {
  const { models, languages, language_detection } = engine.capabilities;
  if (options.model !== undefined && models.length > 0 && !models.includes(options.model)) {
    throw new EngineOptionError(`model '${options.model}' is not available for engine ${engine.id}; available models: ${models.join(', ')}`, {
      engine: engine.id,
      option: 'model',
      available_models: [...models],
    });
  }
  const language = options.language?.trim();
  if (!language || languages.length === 0) return;
  if (language_detection && language.toLowerCase() === 'auto') return;
  if (!languageSupported(language, languages)) {
    const detect = language_detection ? '; or leave language out to have it detected' : '';
    throw new EngineOptionError(`language '${language}' is not available for engine ${engine.id}; available languages: ${languages.join(', ')}${detect}`, {
      engine: engine.id,
      option: 'language',
      languages: [...languages],
    });
  }
}

/**
 * Checks, at submit time, that an engine can perform the requested task, so that a translation
 * is never accepted by an engine that would return a transcript in the spoken language instead.
 * Pure: reads only `engine.id` and the capabilities of `engine` and `enabled`.
 *
 * @param enabled every enabled engine, to name those that can translate.
 * @throws EngineOptionError (400, code INVALID_OPTION) for `translate` on an engine without
 *   `capabilities.translation`, naming the enabled engines that can translate, in the message and
 *   as public fields `{engine, option: 'task', translation_engines}`.
 */
export function checkEngineTask(
  engine: Pick<TranscriptionEngine, 'id' | 'capabilities'>,
  task: EngineTask | undefined,
  enabled: readonly Pick<TranscriptionEngine, 'id' | 'capabilities'>[],
): void {
  if (task !== 'translate' || engine.capabilities.translation) return;
  const capable = enabled.filter((e) => e.capabilities.translation).map((e) => e.id);
  throw new EngineOptionError(
    `engine ${engine.id} cannot translate (task=translate); engines that can: ${capable.join(', ') || '(none enabled)'}; or send task=transcribe for a transcript in the spoken language`,
    { engine: engine.id, option: 'task', translation_engines: capable },
  );
}
