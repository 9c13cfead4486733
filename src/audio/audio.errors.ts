/** Why an input cannot be used as audio. The HTTP layer maps every code to a 4xx. */
export type AudioErrorCode =
  /** Zero bytes. */
  | 'AUDIO_EMPTY'
  /** ffprobe cannot read the container (not audio/video, or a damaged header). */
  | 'AUDIO_UNREADABLE'
  /** A readable container without any audio stream (e.g. a silent video). */
  | 'AUDIO_NO_STREAM'
  /** The file ends before its own header says it should (a cut-off upload). */
  | 'AUDIO_TRUNCATED'
  /** ffmpeg failed to decode the audio stream to 16 kHz mono PCM. */
  | 'AUDIO_DECODE_FAILED';

export class AudioError extends Error {
  constructor(
    readonly code: AudioErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AudioError';
  }
}
