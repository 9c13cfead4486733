import { GatewayError } from '../common/gateway-error.js';

/** Why an input cannot be used as audio. Every code is the caller's problem: a 4xx. */
export type AudioErrorCode =
  /** Zero bytes. */
  | 'AUDIO_EMPTY'
  /** ffprobe cannot read the container (not audio/video, or a damaged header), or a WAV header is malformed. */
  | 'AUDIO_UNREADABLE'
  /** A readable container without any audio stream (e.g. a silent video). */
  | 'AUDIO_NO_STREAM'
  /** The file ends before its own header says it should (a cut-off upload). */
  | 'AUDIO_TRUNCATED'
  /** ffmpeg failed to decode the audio stream to 16 kHz mono PCM. */
  | 'AUDIO_DECODE_FAILED'
  /** A WAV whose header declares a format no decoder handles (unknown format tag, 0 bits per sample, a sample rate outside 1–768 kHz). */
  | 'AUDIO_UNSUPPORTED_FORMAT'
  /** A well-formed container that holds no audio samples (a WAV that is only a header). */
  | 'AUDIO_NO_SAMPLES'
  /** Longer than MAX_AUDIO_DURATION_SECONDS. */
  | 'AUDIO_TOO_LONG';

/**
 * HTTP status of each code. 400: nothing was sent. 415: what was sent is not audio the gateway
 * can read. 422: it is audio, but broken. 413: it is audio, but longer than the gateway accepts.
 */
export const AUDIO_ERROR_STATUS: Readonly<Record<AudioErrorCode, number>> = {
  AUDIO_EMPTY: 400,
  AUDIO_UNREADABLE: 415,
  AUDIO_NO_STREAM: 415,
  AUDIO_TRUNCATED: 422,
  AUDIO_DECODE_FAILED: 422,
  AUDIO_UNSUPPORTED_FORMAT: 422,
  AUDIO_NO_SAMPLES: 422,
  AUDIO_TOO_LONG: 413,
};

/** What every AudioError tells the caller the gateway accepts (public field `accepted`). */
export const ACCEPTED_AUDIO = 'any audio or video file ffmpeg can decode, with at least one audio stream';

export interface AudioErrorOptions {
  /** Safe facts for the caller (`declared_bytes`, `format_name`…); `accepted` is always added. */
  publicFields?: Record<string, unknown>;
  /** Private facts: file paths, ffmpeg/ffprobe stderr, exit codes. Logs and `error_details.internal` only. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * Input that cannot be used as audio. Never retryable (the same file fails the same way).
 * The message and public fields never name the file's path on the gateway: ffmpeg's stderr
 * quotes it, so stderr goes to `details`, and a message built from it goes through
 * {@link toolMessage} first.
 */
export class AudioError extends GatewayError {
  readonly code: AudioErrorCode;

  constructor(code: AudioErrorCode, message: string, options: AudioErrorOptions = {}) {
    super(message, {
      status: AUDIO_ERROR_STATUS[code],
      retryable: false,
      publicFields: { ...options.publicFields, accepted: ACCEPTED_AUDIO },
      details: options.details,
      cause: options.cause,
    });
    this.code = code;
  }
}

/**
 * The last meaningful line of an ffmpeg/ffprobe stderr, fit for a public message: a leading
 * `<one of paths>: ` is dropped (ffprobe's `file: Invalid data…`), any other occurrence of a
 * path, or any absolute path, becomes `<file>`, and the `[demuxer @ 0x55d…]` prefix (a memory
 * address) is dropped. Filter reports (`[Parsed_…`) are skipped. Empty string when stderr has
 * nothing else. At most 300 characters.
 */
export function toolMessage(stderr: string, paths: string[]): string {
  const line = stderr.trim().split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('[Parsed_')).pop() ?? '';
  let text = line.replace(/^\[[^\]]* @ 0x[0-9a-f]+\]\s*/i, '');
  for (const p of paths.filter(Boolean).sort((a, b) => b.length - a.length)) {
    if (text.startsWith(`${p}: `)) text = text.slice(p.length + 2);
    text = text.split(p).join('<file>');
  }
  return text.replace(/(^|[\s'"(=:])\/[^\s'"():,]+/g, '$1<file>').slice(0, 300);
}
