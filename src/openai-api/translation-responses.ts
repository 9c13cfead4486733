import type { JobResultView } from '../jobs/dto/job-views.js';
import { durationOf, toVerboseJson, type VerboseSegment } from './responses.js';

/**
 * The gateway's translated transcript (`JobResultView` of a `task=translate` job) rendered as
 * OpenAI's translation responses. Pure functions. Times are float seconds.
 */

/** `response_format=json` of `/v1/audio/translations`: OpenAI's `Translation`, `{text}`. */
export interface TranslationJson {
  text: string;
}

/**
 * `response_format=verbose_json`: OpenAI's `TranslationVerbose` — `language` is the output's,
 * always `english`; `segments` as in a transcription's verbose_json; no `words` (the translation
 * endpoint has no word timestamps).
 */
export interface TranslationVerboseJson {
  task: 'translate';
  language: 'english';
  /** Seconds of audio. */
  duration: number;
  text: string;
  segments: VerboseSegment[];
}

export function toTranslationJson(view: Pick<JobResultView, 'text'>): TranslationJson {
  return { text: view.text };
}

export function toTranslationVerboseJson(view: JobResultView): TranslationVerboseJson {
  const { segments = [] } = toVerboseJson(view, ['segment']);
  return { task: 'translate', language: 'english', duration: durationOf(view), text: view.text, segments };
}
