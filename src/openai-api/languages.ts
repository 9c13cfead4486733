import { whisperLanguageName } from '../engines/whisper-languages.js';

/**
 * The OpenAI-style language name of a code the engines report (`en`, `en-US`, `pt_BR`, `yue`,
 * `jv`, `nb`): the name Whisper's table gives it under the engines' one alias rule
 * (whisperLanguageName: primary subtag, `jv` → `jw`, `nb` → `no`…), or the code itself
 * (lower-cased) when the table does not know it; `"unknown"` when the engine reported no
 * language and none was requested. OpenAI's `verbose_json` reports names (`"english"`), not codes.
 */
export function languageName(code: string | null | undefined): string {
  if (!code) return 'unknown';
  return whisperLanguageName(code) ?? code.trim().toLowerCase();
}
