/**
 * The one file-name sanitizer of the gateway: every name that comes from outside (an upload's
 * multipart file name, an `audio_url` download's Content-Disposition or URL path) and every name
 * the gateway derives from one (export downloads) goes through {@link safeFilename} before it is
 * stored, logged or sent back in a header.
 */

/** Longest name {@link safeFilename} returns, in UTF-8 bytes (file systems count bytes, mostly 255). */
export const MAX_FILENAME_BYTES = 200;

/** Name used when nothing usable is left of the given one. */
export const DEFAULT_FILENAME = 'audio';

/**
 * Control characters (C0, DEL, C1) and the bidirectional formatting characters, which can make a
 * name display with a different extension than it has (`invoice\u202Egpj.exe`).
 */
const UNSAFE_CHARACTERS = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/**
 * A UTF-16 surrogate without its partner (from a percent-decoded `filename*` or a JSON string):
 * not a character, and not encodable in UTF-8, so it cannot be counted or stored as itself.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** An extension worth keeping when the name has to be shortened: `.` and 1–16 characters without a dot. */
const EXTENSION = /\.[^.\s]{1,16}$/u;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** Options of {@link safeFilename}. */
export interface SafeFilenameOptions {
  /** Returned when nothing is left (default `audio`). */
  fallback?: string;
  /** Byte limit of the result in UTF-8 (default and usual value 200). */
  maxBytes?: number;
}

/**
 * The longest prefix of `text` of at most `maxBytes` UTF-8 bytes that ends on a grapheme boundary
 * (so never inside a code point, an emoji sequence or a letter with its combining marks). A single
 * grapheme longer than the limit is cut between code points instead.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (utf8Bytes(text) <= maxBytes) return text;
  let out = '';
  let used = 0;
  for (const { segment } of graphemes.segment(text)) {
    const size = utf8Bytes(segment);
    if (used + size > maxBytes) {
      if (out === '') {
        for (const codePoint of segment) {
          const cpSize = utf8Bytes(codePoint);
          if (used + cpSize > maxBytes) break;
          out += codePoint;
          used += cpSize;
        }
      }
      break;
    }
    out += segment;
    used += size;
  }
  return out;
}

/**
 * Makes a client-supplied file name harmless while keeping it readable:
 *
 * - the last path segment only (`/` and `\` both count as separators, so `..\..\x.wav` → `x.wav`);
 * - Unicode NFC (macOS sends decomposed names; the same name then compares and sorts equal);
 * - a lone UTF-16 surrogate becomes U+FFFD, as it would in UTF-8 anyway, so that the byte count
 *   below is the count the file system and Postgres see;
 * - no control characters and no bidirectional formatting characters;
 * - no leading dots (no hidden files, no `..`), no leading or trailing white space, no trailing dots;
 * - at most `maxBytes` (200) UTF-8 bytes, cut on a character boundary, keeping a short
 *   extension (`.mp3`) when the stem can be shortened instead;
 * - `fallback` (`audio`) when nothing is left.
 *
 * Pure; never throws.
 */
export function safeFilename(name: string | null | undefined, options: SafeFilenameOptions = {}): string {
  const fallback = options.fallback ?? DEFAULT_FILENAME;
  const maxBytes = options.maxBytes ?? MAX_FILENAME_BYTES;
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = tidy(base.replace(LONE_SURROGATE, '\ufffd').normalize('NFC').replace(UNSAFE_CHARACTERS, ''));
  if (cleaned === '') return fallback;
  if (utf8Bytes(cleaned) <= maxBytes) return cleaned;
  const extension = EXTENSION.exec(cleaned)?.[0] ?? '';
  const stem = cleaned.slice(0, cleaned.length - extension.length);
  const shortened = extension && stem ? tidy(truncateUtf8(stem, maxBytes - utf8Bytes(extension))) : '';
  return shortened ? `${shortened}${extension}` : tidy(truncateUtf8(cleaned, maxBytes)) || fallback;
}

function tidy(name: string): string {
  return name.trim().replace(/^\.+/, '').replace(/[.\s]+$/u, '').trimStart();
}
