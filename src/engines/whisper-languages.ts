/**
 * Whisper's languages, the one table for every Whisper-based engine (whisper-rocm, the OpenAI
 * cloud, whisperx) and for the OpenAI-compatible API's answers.
 *
 * Code (ISO-639-1, plus the three-letter `haw` and `yue`, and Whisper's own `jw` for Javanese) →
 * the lower-case English name that OpenAI's `verbose_json` reports in `language`. Same table and
 * order as openai-whisper 20240930 (`whisper.tokenizer.LANGUAGES`), which engines/whisper-rocm
 * also ships; `yue` is only in the large-v3 vocabulary.
 */
export const WHISPER_LANGUAGES: Readonly<Record<string, string>> = {
  en: 'english', zh: 'chinese', de: 'german', es: 'spanish', ru: 'russian', ko: 'korean', fr: 'french',
  ja: 'japanese', pt: 'portuguese', tr: 'turkish', pl: 'polish', ca: 'catalan', nl: 'dutch', ar: 'arabic',
  sv: 'swedish', it: 'italian', id: 'indonesian', hi: 'hindi', fi: 'finnish', vi: 'vietnamese', he: 'hebrew',
  uk: 'ukrainian', el: 'greek', ms: 'malay', cs: 'czech', ro: 'romanian', da: 'danish', hu: 'hungarian',
  ta: 'tamil', no: 'norwegian', th: 'thai', ur: 'urdu', hr: 'croatian', bg: 'bulgarian', lt: 'lithuanian',
  la: 'latin', mi: 'maori', ml: 'malayalam', cy: 'welsh', sk: 'slovak', te: 'telugu', fa: 'persian',
  lv: 'latvian', bn: 'bengali', sr: 'serbian', az: 'azerbaijani', sl: 'slovenian', kn: 'kannada',
  et: 'estonian', mk: 'macedonian', br: 'breton', eu: 'basque', is: 'icelandic', hy: 'armenian',
  ne: 'nepali', mn: 'mongolian', bs: 'bosnian', kk: 'kazakh', sq: 'albanian', sw: 'swahili', gl: 'galician',
  mr: 'marathi', pa: 'punjabi', si: 'sinhala', km: 'khmer', sn: 'shona', yo: 'yoruba', so: 'somali',
  af: 'afrikaans', oc: 'occitan', ka: 'georgian', be: 'belarusian', tg: 'tajik', sd: 'sindhi', gu: 'gujarati',
  am: 'amharic', yi: 'yiddish', lo: 'lao', uz: 'uzbek', fo: 'faroese', ht: 'haitian creole', ps: 'pashto',
  tk: 'turkmen', nn: 'nynorsk', mt: 'maltese', sa: 'sanskrit', lb: 'luxembourgish', my: 'myanmar',
  bo: 'tibetan', tl: 'tagalog', mg: 'malagasy', as: 'assamese', tt: 'tatar', haw: 'hawaiian', ln: 'lingala',
  ha: 'hausa', ba: 'bashkir', jw: 'javanese', su: 'sundanese', yue: 'cantonese',
};

/** Every code of WHISPER_LANGUAGES, in Whisper's order (the Whisper engines' `capabilities.languages`). */
export const WHISPER_LANGUAGE_CODES: readonly string[] = Object.keys(WHISPER_LANGUAGES);

/**
 * Language subtags that Whisper spells differently from BCP-47: Javanese is `jw` in Whisper
 * (`jv` in ISO-639-1); the deprecated ISO codes `iw`, `in`, `ji` that Java and old Android still
 * send; Norwegian Bokmål `nb`, which Whisper calls `no`; Filipino `fil`, which Whisper calls
 * Tagalog `tl`.
 */
const CODE_ALIASES: Readonly<Record<string, string>> = { jv: 'jw', iw: 'he', in: 'id', ji: 'yi', nb: 'no', fil: 'tl' };

/**
 * English name → code, including the alternative names Whisper accepts
 * (`whisper.tokenizer.TO_LANGUAGE_CODE`), so that any server's spelling maps back.
 */
const NAME_TO_CODE: ReadonlyMap<string, string> = new Map([
  ...Object.entries(WHISPER_LANGUAGES).map(([code, name]) => [name, code] as [string, string]),
  ['burmese', 'my'], ['valencian', 'ca'], ['flemish', 'nl'], ['haitian', 'ht'], ['letzeburgesch', 'lb'],
  ['pushto', 'ps'], ['panjabi', 'pa'], ['moldavian', 'ro'], ['moldovan', 'ro'], ['sinhalese', 'si'],
  ['castilian', 'es'], ['mandarin', 'zh'], ['bokmal', 'no'], ['filipino', 'tl'],
]);

/**
 * The one alias rule: the Whisper code for a language given as a code or a name, or null when
 * Whisper does not know it.
 *
 * - A language name, any case (`English`, `castilian`) → its code (`en`, `es`).
 * - A BCP-47 or POSIX tag (`en-US`, `pt_BR`, `zh-Hant-TW`) → its primary subtag, lower-cased,
 *   with CODE_ALIASES applied (`jv` → `jw`, `nb-NO` → `no`).
 */
export function whisperLanguageCode(language: string): string | null {
  const value = language.trim().toLowerCase();
  if (value === '') return null;
  const byName = NAME_TO_CODE.get(value);
  if (byName) return byName;
  const primary = value.split(/[-_]/)[0] ?? '';
  const code = CODE_ALIASES[primary] ?? primary;
  return code in WHISPER_LANGUAGES ? code : null;
}

/**
 * The English name OpenAI reports for a language (`en-US` → `english`, `jv` → `javanese`), by
 * the same rule as whisperLanguageCode; null when Whisper does not know it.
 */
export function whisperLanguageName(language: string): string | null {
  const code = whisperLanguageCode(language);
  return code === null ? null : WHISPER_LANGUAGES[code];
}

/**
 * The language a Whisper server reports, as a code: OpenAI's `verbose_json.language` is the full
 * English name (`"english"` → `"en"`); some compatible servers send the code itself, which is
 * kept. An unknown value passes through lower-cased rather than being dropped; absent → null.
 */
export function languageCodeFromReport(language: unknown): string | null {
  if (typeof language !== 'string' || language.trim() === '') return null;
  return whisperLanguageCode(language) ?? language.trim().toLowerCase();
}
