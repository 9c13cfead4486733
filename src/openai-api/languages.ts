import { WHISPER_LANGUAGES } from '../engines/openai-compatible/openai-compatible.mapper.js';

/**
 * ISO-639-1 (and a few ISO-639-2) codes → the lower-case English language names OpenAI's
 * `verbose_json` reports in `language` (`"english"`, not `"en"`). The table is Whisper's own
 * (`whisper/tokenizer.py` LANGUAGES), which is where OpenAI's names come from.
 */
// Whisper's table lives with the OpenAI-compatible adapter; the ingress adds the aliases engines
// may report beyond it (`jv` for Whisper's `jw`, `nb` for Norwegian Bokmål).
const LANGUAGE_NAMES: Readonly<Record<string, string>> = { ...WHISPER_LANGUAGES, jv: 'javanese', nb: 'norwegian' };

/**
 * The OpenAI-style language name of a code the engines report (`en`, `en-US`, `pt_BR`, `yue`):
 * the name of its primary subtag, or the code itself (lower-cased) when the table does not know
 * it; `"unknown"` when the engine reported no language and none was requested.
 */
export function languageName(code: string | null | undefined): string {
  if (!code) return 'unknown';
  const lower = code.trim().toLowerCase();
  const primary = lower.split(/[-_]/)[0] ?? lower;
  return LANGUAGE_NAMES[primary] ?? lower;
}
