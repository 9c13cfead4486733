/**
 * Media types (MIME types) of uploads: what a client declared, as stored, and what the gateway
 * serves back, which it derives from what it detected in the file and never from the declaration.
 */

/** Longest declared type kept, in characters: the `transcripts.mime_type` column is varchar(255). */
export const MAX_MEDIA_TYPE_LENGTH = 255;

/** `type/subtype` of RFC 9110 tokens, parameters after `;` ignored. */
const ESSENCE = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(;.*)?$/s;

/**
 * The declared `Content-Type` of an upload as it is stored: its essence (`type/subtype`,
 * lower-case, parameters dropped), or null when the declaration is missing, malformed or longer
 * than {@link MAX_MEDIA_TYPE_LENGTH}. The declaration is only informational (the gateway probes the
 * file itself and serves the type it detected), so a bad one is dropped rather than refused.
 */
export function declaredMediaType(value: string | null | undefined): string | null {
  const essence = ESSENCE.exec(value ?? '')?.[1]?.toLowerCase();
  return essence && essence.length <= MAX_MEDIA_TYPE_LENGTH ? essence : null;
}

/** Served when the detected container has no audio or video type here. */
export const OCTET_STREAM = 'application/octet-stream';

/**
 * Container names as ffprobe (`format_name`, comma-separated aliases) and music-metadata
 * (`container`, e.g. `WAVE`, `MPEG`, `EBML/webm`) report them, lower-cased, to the type served
 * for audio-only files and for files with a video stream.
 */
const CONTAINER_TYPES: ReadonlyArray<readonly [names: readonly string[], audio: string, video: string]> = [
  [['wav', 'wave', 'w64', 'rf64'], 'audio/wav', 'audio/wav'],
  [['mp3'], 'audio/mpeg', 'audio/mpeg'],
  [['flac'], 'audio/flac', 'audio/flac'],
  [['ogg'], 'audio/ogg', 'video/ogg'],
  [['webm'], 'audio/webm', 'video/webm'],
  [['matroska', 'ebml'], 'audio/x-matroska', 'video/x-matroska'],
  [['mov', 'mp4', 'm4a', 'mpeg-4', 'm4v', 'isom', 'mp42', 'quicktime'], 'audio/mp4', 'video/mp4'],
  [['3gp', '3g2', '3gp4', '3gp5'], 'audio/3gpp', 'video/3gpp'],
  [['aac', 'adts'], 'audio/aac', 'audio/aac'],
  [['aiff', 'aifc', 'aif'], 'audio/aiff', 'audio/aiff'],
  [['amr'], 'audio/amr', 'audio/amr'],
  [['au'], 'audio/basic', 'audio/basic'],
  [['caf'], 'audio/x-caf', 'audio/x-caf'],
  [['asf'], 'audio/x-ms-wma', 'video/x-ms-asf'],
  // ffprobe's `mpeg` is an MPEG program stream (video); music-metadata's `MPEG` is MPEG audio.
  [['mpeg'], 'audio/mpeg', 'video/mpeg'],
  [['mpegts'], 'video/mp2t', 'video/mp2t'],
  [['avi'], 'video/x-msvideo', 'video/x-msvideo'],
  [['flv'], 'video/x-flv', 'video/x-flv'],
];

/**
 * The `Content-Type` the gateway serves a stored upload with: derived from the container it
 * detected at submit (the transcript's `metadata.format`, the probe's container name, and
 * `metadata.has_video`), always an `audio/*` or
 * `video/*` type, else `application/octet-stream`. Never the uploader's declaration: a file
 * declared `text/html` must not render as a page on the gateway's origin.
 */
export function servedMediaType(metadata: Readonly<Record<string, unknown>> | null | undefined): string {
  const detected = metadata?.format ?? metadata?.format_name;
  const format = typeof detected === 'string' ? detected.toLowerCase() : '';
  const names = format.split(/[,/\s]+/).filter(Boolean);
  const video = metadata?.has_video === true;
  for (const [aliases, audioType, videoType] of CONTAINER_TYPES) {
    if (names.some((n) => aliases.includes(n))) return video ? videoType : audioType;
  }
  return OCTET_STREAM;
}
