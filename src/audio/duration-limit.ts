import { clockTime } from '../common/clock-time.js';
import { AudioError } from './audio.errors.js';

/**
 * Refuses a recording longer than MAX_AUDIO_DURATION_SECONDS: it would hold a worker, a temporary
 * decode of 32 000 bytes per second and the engine for as long as the recording plays.
 *
 * @param durationSec seconds of audio: the container's claim at submit (null when it has none: the
 *   worker's decode checks it then), or the decoded length at worker intake.
 * @param limitSec MAX_AUDIO_DURATION_SECONDS; 0 = no limit.
 * @param decodeCapped true when the decode stopped at the limit (worker intake), so the real
 *   length is only known to be over it.
 * @throws AudioError AUDIO_TOO_LONG (413) naming the limit and the duration, with public fields
 *   `duration_sec` and `max_duration_sec`.
 */
export function assertWithinDurationLimit(durationSec: number | null, limitSec: number, decodeCapped = false): void {
  if (limitSec <= 0 || durationSec === null || !(durationSec > limitSec)) return;
  const length = decodeCapped ? `longer than ${clockTime(limitSec)}` : `${clockTime(durationSec)} long (${durationSec.toFixed(1)} s)`;
  throw new AudioError(
    'AUDIO_TOO_LONG',
    `the recording is ${length}; the limit is ${clockTime(limitSec)} (${limitSec} s, MAX_AUDIO_DURATION_SECONDS): split it into parts of at most that length`,
    { publicFields: { ...(decodeCapped ? {} : { duration_sec: Math.round(durationSec * 1000) / 1000 }), max_duration_sec: limitSec } },
  );
}
