/**
 * Durations in API answers and webhook payloads (status `result.duration`, result `duration`,
 * OpenAI `duration`, `transcription.completed` `result.duration`): seconds rounded to 3 decimals
 * (milliseconds), the same everywhere. Segment and word times are the engines' own and are not
 * rounded.
 */
export function roundSeconds(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
