/** A pause found by ffmpeg's silencedetect, in seconds from the start of the audio. */
export interface Silence {
  start: number;
  end: number;
}

/**
 * Parses ffmpeg `silencedetect` output (stderr lines `silence_start: 12.3` and
 * `silence_end: 13.1 | silence_duration: 0.8`). A pause still open at the end of the input
 * (start without end) runs to `duration`.
 */
export function parseSilencedetect(stderr: string, duration: number): Silence[] {
  const silences: Silence[] = [];
  let open: number | null = null;
  for (const line of stderr.split('\n')) {
    const start = /silence_start:\s*(-?[\d.]+)/.exec(line);
    if (start) {
      open = Math.max(0, Number(start[1]));
      continue;
    }
    const end = /silence_end:\s*([\d.]+)/.exec(line);
    if (end && open !== null) {
      silences.push({ start: open, end: Number(end[1]) });
      open = null;
    }
  }
  if (open !== null && open < duration) silences.push({ start: open, end: duration });
  return silences;
}
