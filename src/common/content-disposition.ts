import { create, parse } from 'content-disposition';

/** Not printable US-ASCII (per code point: one `_` for an emoji, not two). */
const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/gu;

/** Options of {@link contentDisposition}. */
export interface ContentDispositionOptions {
  /** `inline` (show in the browser, e.g. an audio player) or `attachment` (save as a file). */
  type: 'inline' | 'attachment';
}

/**
 * A `Content-Disposition` header value (RFC 6266) naming `filename`, built by the
 * `content-disposition` package: a plain ASCII name as `filename` (quoted when it is not a token);
 * any other name as `filename*` (RFC 8187, UTF-8 percent-encoded) plus an ASCII `filename` fallback
 * in which every other character is `_` (the package's own fallback uses `?`, which Windows refuses
 * in file names).
 *
 * Pass a name that went through `safeFilename` (src/common/filename.ts); this builds the header,
 * it does not shorten or clean the name.
 *
 * @example contentDisposition('réunion.mp3', { type: 'inline' })
 *   // inline; filename=r_union.mp3; filename*=UTF-8''r%C3%A9union.mp3
 */
export function contentDisposition(filename: string, options: ContentDispositionOptions): string {
  const fallback = filename.replace(NOT_PRINTABLE_ASCII, '_');
  // An ASCII name keeps the package's default, which also moves names that look percent-encoded to filename*.
  return create(filename, { type: options.type, ...(fallback !== filename ? { fallback } : {}) });
}

/**
 * The file name a `Content-Disposition` value names, parsed by the `content-disposition` package:
 * `filename*` (RFC 8187, UTF-8 or ISO-8859-1) when present and decodable, else `filename`; null
 * when there is neither, or the value is empty. Unsafe names are returned as they are: clean them
 * with `safeFilename`.
 */
export function dispositionFilename(value: string | undefined): string | null {
  if (!value) return null;
  const { filename } = parse(value).parameters;
  return filename ? filename : null;
}
