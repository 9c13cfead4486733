import { contentDisposition } from '../common/content-disposition.js';
import { MAX_FILENAME_BYTES, safeFilename } from '../common/filename.js';
import { GatewayError } from '../common/gateway-error.js';
import type { Segment, Word } from '../engines/engine.spec.js';

/**
 * Transcript exports: plain text, SubRip (SRT) and WebVTT, rendered from the normalized result
 * (`JobResultView` of `GET /api/transcribe/jobs/result/:job_id`). Pure functions: no I/O, no Nest.
 *
 * Units: every time in and out is float **seconds**; the subtitle formats print them rounded to
 * milliseconds. Speakers are the 0-based `speaker_tag` of the engine spec, shown 1-based
 * (`Speaker 1` is tag 0) unless `speaker_roles` names them.
 */

/** Formats the result endpoint can serve. */
export const EXPORT_FORMATS = ['json', 'txt', 'srt', 'vtt'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * What an export needs from a result. `JobResultView` satisfies it; declared here so that this
 * module does not depend on the jobs module.
 */
export interface TranscriptExportSource {
  segments: Segment[];
  /** Names per speaker tag, keys are the tag as a string: `{"0": "provider", "1": "patient"}`. */
  speaker_roles?: Record<string, string> | null;
  /** Full text; used by the text export only when there are no segments. */
  text?: string;
  /** Language code; languages written without spaces (zh, ja, th…) join words without one. */
  language?: string | null;
}

/** Limits for building subtitle cues. Defaults follow common subtitle guidelines (two lines of 42 characters, at most ~7 s on screen). */
export interface CueOptions {
  /** Longest cue, seconds (default 7). A single word longer than this still makes one cue. */
  maxCueDurationSec?: number;
  /** Characters per line (default 42). Speaker labels are not counted. */
  maxLineChars?: number;
  /** Lines per cue (default 2). */
  maxLines?: number;
  /** Shortest cue, seconds (default 0.2); shorter cues are stretched, never past the next cue's start. */
  minCueDurationSec?: number;
}

/** One subtitle cue. Times are float seconds; `lines` are the wrapped text lines. */
export interface Cue {
  start: number;
  end: number;
  lines: string[];
  /** 0-based speaker, or null when the engine did not attribute one. */
  speaker_tag: number | null;
}

const DEFAULTS: Required<CueOptions> = { maxCueDurationSec: 7, maxLineChars: 42, maxLines: 2, minCueDurationSec: 0.2 };

/** Languages whose script has no spaces between words (ISO-639-1 / BCP-47 primary subtags). */
const NO_SPACE_LANGUAGES = new Set(['zh', 'ja', 'th', 'lo', 'km', 'my', 'yue', 'bo']);

/** A word ending a clause or sentence: the preferred place to break a cue. */
const BREAK_PUNCTUATION = /[.,;:!?…。，、！？；：]["')\]»”’]*$/u;
/** Tokens that are only closing punctuation attach to the previous word without a space. */
const PUNCTUATION_ONLY = /^[.,;:!?…%)\]}"'»”’。，、！？；：]+$/u;

/** Failures of export format negotiation. */
export type ExportErrorCode =
  /** The `format` query parameter names no format the result endpoint serves. */
  'UNSUPPORTED_FORMAT';

/** HTTP status of every ExportErrorCode. */
export const EXPORT_ERROR_STATUS: Record<ExportErrorCode, number> = {
  UNSUPPORTED_FORMAT: 400,
};

/**
 * Raised for a `format` value the result endpoint does not serve: HTTP 400 with the public field
 * `accepted_formats`.
 */
export class ExportFormatError extends GatewayError {
  readonly code: ExportErrorCode = 'UNSUPPORTED_FORMAT';
  /** The accepted values (also the public field `accepted_formats`). */
  readonly accepted: readonly ExportFormat[] = EXPORT_FORMATS;

  constructor(readonly given: string) {
    super(`unsupported format '${given}'; accepted formats: ${EXPORT_FORMATS.join(', ')}`, {
      status: EXPORT_ERROR_STATUS.UNSUPPORTED_FORMAT,
      publicFields: { accepted_formats: EXPORT_FORMATS },
    });
  }
}

/** `Content-Type` of each export (JSON is Nest's own serialization). */
export const EXPORT_CONTENT_TYPES: Readonly<Record<ExportFormat, string>> = {
  json: 'application/json; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  srt: 'application/x-subrip; charset=utf-8',
  vtt: 'text/vtt; charset=utf-8',
};

/** Media types in `Accept` that select a format; `application/json` and anything else mean JSON. */
const ACCEPT_TYPES: Readonly<Record<string, ExportFormat>> = {
  'application/json': 'json',
  'text/vtt': 'vtt',
  'application/x-subrip': 'srt',
  'text/srt': 'srt',
  'application/srt': 'srt',
  'text/plain': 'txt',
};

/**
 * Chooses the export format: the `format` query parameter wins; otherwise the `Accept` header
 * (media ranges with `q` weights; the highest-weighted known type, ties in header order);
 * otherwise JSON. An `Accept` that names nothing known also means JSON rather than 406, so
 * browsers and generic clients keep getting the API's JSON.
 *
 * @param query the raw `format` query value (case-insensitive; empty counts as absent)
 * @param accept the raw `Accept` header
 * @throws ExportFormatError when `query` is not one of `json`, `txt`, `srt`, `vtt`
 */
export function pickFormat(query?: string, accept?: string): ExportFormat {
  const q = query?.trim().toLowerCase();
  if (q) {
    if ((EXPORT_FORMATS as readonly string[]).includes(q)) return q as ExportFormat;
    throw new ExportFormatError(query!);
  }
  if (!accept) return 'json';
  let best: { format: ExportFormat; weight: number } | null = null;
  for (const range of accept.split(',')) {
    const [type, ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    const format = type && Object.hasOwn(ACCEPT_TYPES, type) ? ACCEPT_TYPES[type] : undefined;
    if (!format) continue;
    const qParam = params.find((p) => p.startsWith('q='));
    const weight = qParam ? Number(qParam.slice(2)) : 1;
    if (!Number.isFinite(weight) || weight <= 0) continue;
    if (!best || weight > best.weight) best = { format, weight };
  }
  return best?.format ?? 'json';
}

/**
 * `Content-Disposition` for a downloaded export: `attachment` naming `<basename>.<ext>`, the
 * basename being the uploaded file's name (cleaned by `safeFilename`) without its extension, or
 * `transcript`. Built by `contentDisposition` (src/common/content-disposition.ts): non-ASCII names
 * as RFC 8187 `filename*` with an ASCII `filename` fallback.
 *
 * @example exportContentDisposition('réunion.wav', 'vtt')
 *   // attachment; filename=r_union.vtt; filename*=UTF-8''r%C3%A9union.vtt
 */
export function exportContentDisposition(uploadFilename: string | null | undefined, format: ExportFormat): string {
  const extension = `.${format}`;
  const upload = safeFilename(uploadFilename, { fallback: '' });
  const stem = safeFilename(upload.replace(/\.[^.]*$/, ''), { fallback: 'transcript', maxBytes: MAX_FILENAME_BYTES - extension.length });
  return contentDisposition(`${stem}${extension}`, { type: 'attachment' });
}

/** The label of a speaker: its role from `speaker_roles`, else `Speaker N` (1-based). Null without a speaker. */
export function speakerLabel(tag: number | null, roles?: Record<string, string> | null): string | null {
  if (tag === null || tag === undefined) return null;
  const role = roles?.[String(tag)]?.trim();
  return role ? role : `Speaker ${tag + 1}`;
}

/**
 * Plain text: one paragraph per segment, separated by a blank line, each prefixed with
 * `<label>: ` when the segment has a speaker. Without segments, the result's `text`.
 */
export function toText(result: TranscriptExportSource): string {
  const paragraphs = result.segments
    .map((s) => {
      const text = clean(s.text);
      if (!text) return '';
      const label = speakerLabel(s.speaker_tag, result.speaker_roles);
      return label ? `${label}: ${text}` : text;
    })
    .filter(Boolean);
  if (paragraphs.length === 0) {
    const text = clean(result.text ?? '');
    return text ? `${text}\n` : '';
  }
  return `${paragraphs.join('\n\n')}\n`;
}

/**
 * SubRip: cues numbered from 1, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, the speaker as a `[label] `
 * prefix on the first line. Cues come from {@link buildCues}.
 */
export function toSrt(result: TranscriptExportSource, opts: CueOptions = {}): string {
  return buildCues(result, opts)
    .map((cue, i) => {
      const label = speakerLabel(cue.speaker_tag, result.speaker_roles);
      const lines = label ? [`[${label}] ${cue.lines[0]}`, ...cue.lines.slice(1)] : cue.lines;
      return `${i + 1}\n${timestamp(cue.start, ',')} --> ${timestamp(cue.end, ',')}\n${lines.join('\n')}\n`;
    })
    .join('\n');
}

/**
 * WebVTT: `WEBVTT` header, cues `HH:MM:SS.mmm --> HH:MM:SS.mmm`, the speaker as a voice span
 * `<v label>text</v>` (WebVTT §4.2.2, "cue voice span"). `&`, `<` and `>` in text and labels
 * are written as character references, since the cue text parser reads them as markup.
 */
export function toVtt(result: TranscriptExportSource, opts: CueOptions = {}): string {
  const cues = buildCues(result, opts).map((cue) => {
    const label = speakerLabel(cue.speaker_tag, result.speaker_roles);
    const text = cue.lines.map(escapeVtt).join('\n');
    const body = label ? `<v ${escapeVtt(label)}>${text}</v>` : text;
    return `${timestamp(cue.start, '.')} --> ${timestamp(cue.end, '.')}\n${body}\n`;
  });
  return ['WEBVTT\n', ...cues].join('\n');
}

/**
 * Builds subtitle cues from a result.
 *
 * - Segments with words: words are grouped into cues of at most `maxCueDurationSec` that fit
 *   in `maxLines` lines of `maxLineChars` (wrapped at word boundaries). When a cue is full it is
 *   closed after its last clause-ending word (`.`, `,`, `?`…) if one lies in its second half, so
 *   breaks fall on punctuation where the text allows it. A change of speaker (word `speaker_tag`,
 *   else the segment's) always starts a new cue.
 * - Segments without words: one cue per segment, times and text as they are.
 *
 * Word times are clamped to their segment. Cues are ordered and never overlap; a cue shorter
 * than `minCueDurationSec` is stretched, but never past the start of the next cue.
 */
export function buildCues(result: TranscriptExportSource, options: CueOptions = {}): Cue[] {
  const opts = { ...DEFAULTS, ...options };
  const joiner = NO_SPACE_LANGUAGES.has((result.language ?? '').toLowerCase().split(/[-_]/)[0] ?? '') ? '' : ' ';
  const raw: Cue[] = [];
  for (const segment of result.segments) {
    const words = segment.words.filter((w) => clean(w.word) !== '');
    if (words.length === 0) {
      const text = clean(segment.text);
      if (text) raw.push({ start: segment.start, end: segment.end, lines: wrap(text, opts.maxLineChars, joiner), speaker_tag: segment.speaker_tag });
      continue;
    }
    for (const cue of cuesFromWords(words, segment, opts, joiner)) raw.push(cue);
  }
  raw.sort((a, b) => a.start - b.start || a.end - b.end);
  return fixTimes(raw, opts.minCueDurationSec);
}

/** Splits one segment's words into cues (see {@link buildCues}). */
function cuesFromWords(words: Word[], segment: Segment, opts: Required<CueOptions>, joiner: string): Cue[] {
  const cues: Cue[] = [];
  const speakerOf = (w: Word) => w.speaker_tag ?? segment.speaker_tag;
  // Word times outside the segment (alignment drift) are pulled in so each cue stays within it.
  const hasSpan = segment.end > segment.start;
  const clamp = (t: number) => (hasSpan ? Math.min(Math.max(t, segment.start), segment.end) : t);
  const fits = (group: Word[]) => wrap(joinWords(group, joiner), opts.maxLineChars, joiner).length <= opts.maxLines;
  const emit = (group: Word[]) => {
    const start = clamp(group[0].start);
    const end = clamp(Math.max(...group.map((w) => w.end)));
    cues.push({ start, end, lines: wrap(joinWords(group, joiner), opts.maxLineChars, joiner), speaker_tag: speakerOf(group[0]) });
  };

  const tooLong = (group: Word[], next: Word) => next.end - group[0].start > opts.maxCueDurationSec || !fits([...group, next]);

  let current: Word[] = [];
  for (const word of words) {
    if (current.length > 0 && speakerOf(word) !== speakerOf(current[0])) {
      emit(current);
      current = [];
    }
    // Punctuation-only tokens always stay with the word they follow.
    while (current.length > 0 && !PUNCTUATION_ONLY.test(clean(word.word)) && tooLong(current, word)) {
      // Close at the last clause end in the cue's second half and carry the rest over; the
      // carried words are checked again against the limits together with the new word.
      let cut = current.length;
      for (let i = current.length - 1; i >= Math.ceil(current.length / 2); i--) {
        if (BREAK_PUNCTUATION.test(clean(current[i - 1].word))) {
          cut = i;
          break;
        }
      }
      emit(current.slice(0, cut));
      current = current.slice(cut);
    }
    current.push(word);
  }
  if (current.length > 0) emit(current);
  return cues;
}

/**
 * Orders cue times: no overlap, and no cue shorter than `minDur` unless the next cue starts
 * sooner, in which case the cue ends where the next one starts. Only cues that start at the same
 * millisecond push the next cue later. Times are rounded to milliseconds first, the precision
 * both formats print, so the printed times keep these properties.
 */
function fixTimes(cues: Cue[], minDur: number): Cue[] {
  const ms = (t: number) => Math.round(t * 1000) / 1000;
  const rounded = cues.map((c) => ({ ...c, start: ms(c.start), end: ms(c.end) }));
  let prevEnd = 0;
  return rounded.map((cue, i) => {
    const start = Math.max(cue.start, prevEnd);
    let end = Math.max(cue.end, ms(start + minDur));
    const next = rounded[i + 1];
    if (next && end > next.start) end = next.start > start ? next.start : ms(start + minDur);
    prevEnd = end;
    return { ...cue, start, end };
  });
}

function joinWords(words: Word[], joiner: string): string {
  let out = '';
  for (const w of words) {
    const text = clean(w.word);
    out += out === '' || PUNCTUATION_ONLY.test(text) ? text : joiner + text;
  }
  return out;
}

/** Greedy wrap at word boundaries; a word longer than `width` gets a line of its own. */
function wrap(text: string, width: number, joiner: string): string[] {
  if (joiner === '') {
    const lines: string[] = [];
    for (let i = 0; i < text.length; i += width) lines.push(text.slice(i, i + width));
    return lines.length ? lines : [''];
  }
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  lines.push(line);
  return lines.length === 2 ? (balance(text.split(' '), width) ?? lines) : lines;
}

/** Two lines of similar length (subtitle convention) instead of a full first line and a short second. */
function balance(words: string[], width: number): string[] | null {
  let best: string[] | null = null;
  let bestLongest = Infinity;
  for (let i = 1; i < words.length; i++) {
    const pair = [words.slice(0, i).join(' '), words.slice(i).join(' ')];
    const longest = Math.max(pair[0].length, pair[1].length);
    if (longest <= width && longest < bestLongest) [best, bestLongest] = [pair, longest];
  }
  return best;
}

/** Collapses whitespace (subtitle text may not contain blank lines). */
function clean(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function escapeVtt(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** `HH:MM:SS<sep>mmm` from float seconds (hours grow past 99 when needed). */
function timestamp(seconds: number, sep: ',' | '.'): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}${sep}${pad(ms % 1000, 3)}`;
}
