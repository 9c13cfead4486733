import { deflateSync } from 'node:zlib';
import type { Segment } from '../engines/engine.spec.js';
import { roundSeconds, type JobResultView } from '../jobs/dto/job-views.js';
import type { TimestampGranularity } from './dto/transcription-request.dto.js';
import { languageName } from './languages.js';

/**
 * The gateway's normalized transcript (`JobResultView`) rendered as OpenAI's transcription
 * responses. Pure functions: no I/O, no Nest. Every time is float seconds, as in both APIs.
 */

/** OpenAI's usage object for audio billed by duration: whole seconds, rounded up. */
export interface DurationUsage {
  type: 'duration';
  seconds: number;
}

/** `response_format=json` (the default): `{text, usage}`. */
export interface TranscriptionJson {
  text: string;
  usage: DurationUsage;
}

/** One segment of `verbose_json`, field for field OpenAI's `TranscriptionSegment`. */
export interface VerboseSegment {
  /** 0-based position. */
  id: number;
  /** Always 0: the gateway does not expose Whisper's 30-second window offsets. */
  seek: number;
  /** Seconds. */
  start: number;
  /** Seconds. */
  end: number;
  text: string;
  /** Always empty: engines do not return token ids. */
  tokens: number[];
  /** Always 0: engines do not report the decoding temperature. */
  temperature: number;
  /** ln(segment confidence) when the engine gives a confidence, else 0. */
  avg_logprob: number;
  /** Bytes of the UTF-8 text / bytes of its zlib compression, as Whisper computes it; 0 for empty text. */
  compression_ratio: number;
  /** Always 0: engines do not report it. */
  no_speech_prob: number;
}

/** `response_format=verbose_json`, field for field OpenAI's `TranscriptionVerbose`. */
export interface TranscriptionVerboseJson {
  task: 'transcribe';
  /** English name of the language, lower case (`english`), as OpenAI reports it. */
  language: string;
  /** Seconds of audio, 3 decimals. */
  duration: number;
  text: string;
  /** Present when `timestamp_granularities` includes `segment`, or is not given. */
  segments?: VerboseSegment[];
  /** Present when `timestamp_granularities` includes `word`. Times in seconds. */
  words?: { word: string; start: number; end: number }[];
  usage: DurationUsage;
}

/** Events of `stream=true`, OpenAI's `TranscriptionStreamEvent` (less the diarized segment event). */
export type TranscriptionStreamEvent =
  | { type: 'transcript.text.delta'; delta: string }
  /** Carries no `usage`: OpenAI's done event reports token usage, which has no meaning here. */
  | { type: 'transcript.text.done'; text: string };

/** Seconds of the transcribed audio, 3 decimals as everywhere in the API: the recording's duration, else the end of the last segment, else 0. */
export function durationOf(view: Pick<JobResultView, 'duration' | 'segments'>): number {
  if (view.duration !== null && view.duration !== undefined) return roundSeconds(view.duration);
  return roundSeconds(view.segments.reduce((end, s) => Math.max(end, s.end), 0));
}

export function usageOf(view: Pick<JobResultView, 'duration' | 'segments'>): DurationUsage {
  return { type: 'duration', seconds: Math.ceil(durationOf(view)) };
}

export function toTranscriptionJson(view: JobResultView): TranscriptionJson {
  return { text: view.text, usage: usageOf(view) };
}

/** `response_format=text`: the text and a final newline, as OpenAI answers it. */
export function toTranscriptionText(view: Pick<JobResultView, 'text'>): string {
  return `${view.text}\n`;
}

/** Whisper's compression ratio of a text (`len(bytes) / len(zlib.compress(bytes))`); 0 for empty text. */
export function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length === 0) return 0;
  return bytes.length / deflateSync(bytes).length;
}

/** ln(confidence) for a 0..1 confidence (floored at 1e-9 so 0 stays finite); 0 when unknown. */
export function avgLogprob(confidence: number | null): number {
  return confidence === null || confidence === undefined ? 0 : Math.log(Math.max(confidence, 1e-9));
}

function verboseSegment(segment: Segment, id: number): VerboseSegment {
  return {
    id,
    seek: 0,
    start: segment.start,
    end: segment.end,
    text: segment.text,
    tokens: [],
    temperature: 0,
    avg_logprob: avgLogprob(segment.confidence),
    compression_ratio: compressionRatio(segment.text),
    no_speech_prob: 0,
  };
}

/**
 * `response_format=verbose_json`. Like OpenAI: `segments` when `granularities` includes
 * `segment` or is empty (OpenAI's default), `words` only when it includes `word`.
 *
 * @param requestedLanguage the request's `language`, used when the engine reported none.
 */
export function toVerboseJson(view: JobResultView, granularities: readonly TimestampGranularity[], requestedLanguage?: string): TranscriptionVerboseJson {
  const response: TranscriptionVerboseJson = {
    task: 'transcribe',
    language: languageName(view.language ?? requestedLanguage),
    duration: durationOf(view),
    text: view.text,
    usage: usageOf(view),
  };
  if (granularities.length === 0 || granularities.includes('segment')) response.segments = view.segments.map(verboseSegment);
  if (granularities.includes('word')) {
    response.words = view.segments.flatMap((s) => s.words.map((w) => ({ word: w.word, start: w.start, end: w.end })));
  }
  return response;
}

/**
 * The deltas of a streamed transcription: one per segment, cut from `text` itself so that they
 * concatenate to exactly `text` (the separators between segments travel with the following
 * segment's delta). A segment whose text cannot be found in `text` ends the per-segment cuts:
 * the rest of `text` becomes one delta. Empty text gives no delta.
 */
export function streamDeltas(view: Pick<JobResultView, 'text' | 'segments'>): string[] {
  const text = view.text;
  const deltas: string[] = [];
  let cursor = 0;
  for (const segment of view.segments) {
    const piece = segment.text.trim();
    if (!piece) continue;
    const at = text.indexOf(piece, cursor);
    if (at < 0) break;
    const end = at + piece.length;
    deltas.push(text.slice(cursor, end));
    cursor = end;
  }
  if (cursor < text.length) {
    if (deltas.length > 0 && text.slice(cursor).trim() === '') deltas[deltas.length - 1] += text.slice(cursor);
    else deltas.push(text.slice(cursor));
  }
  return deltas;
}

/** Every event of a streamed transcription: the deltas, then `transcript.text.done` with the whole text. */
export function streamEvents(view: JobResultView): TranscriptionStreamEvent[] {
  return [
    ...streamDeltas(view).map((delta): TranscriptionStreamEvent => ({ type: 'transcript.text.delta', delta })),
    { type: 'transcript.text.done', text: view.text },
  ];
}

/** One Server-Sent Event carrying `data` as JSON: a `data:` line only; clients read the event type from the JSON's `type`. */
export function sseFrame(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}
