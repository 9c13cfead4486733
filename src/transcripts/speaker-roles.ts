import type { Segment } from '../engines/engine.spec.js';

/**
 * Speaker roles: a post-processing step that names the speakers of a diarized transcript
 * (seed 002 `transcripts.speaker_roles`, e.g. `{"0": "provider", "1": "patient"}`). It works on
 * the normalized segments, so it serves every engine that returns `speaker_tag`s.
 */

/** Strategies a request may choose (`speaker_roles` field); for `@IsIn(SPEAKER_ROLE_STRATEGIES)` in DTOs. */
export const SPEAKER_ROLE_STRATEGIES = ['none', 'first_speaker', 'keywords'] as const;
export type SpeakerRoleStrategy = (typeof SPEAKER_ROLE_STRATEGIES)[number];

/** Role names used when a request gives none: a clinical encounter. */
export const DEFAULT_SPEAKER_ROLES: readonly string[] = ['provider', 'patient'];

/**
 * Keywords (lower case; multi-word entries are phrases) per default role. Hits are counted on
 * whole words, so `my` does not match `myself` and `exam` does not match `example`.
 */
export const DEFAULT_ROLE_KEYWORDS: Readonly<Record<string, readonly string[]>> = {
  provider: [
    'doctor', 'prescribe', 'prescription', 'diagnosis', 'symptoms', 'exam', 'examine', 'how can i help',
    'what brings you', 'any allergies', 'blood pressure', 'let me check', 'follow up', 'dosage', 'refer you',
  ],
  patient: [
    'pain', 'hurts', 'hurt', 'i feel', 'i have been', "i've been", 'my', 'medication', 'sore', 'dizzy', 'i can\'t sleep',
    'worried',
  ],
};

/** The speaker-roles part of a request. */
export interface SpeakerRolesRequest {
  /**
   * `none`: no roles. `first_speaker`: the first speaker to talk gets roles[0], the next distinct
   * one roles[1], and so on. `keywords`: roles go to the speakers whose words hit that role's
   * keywords most.
   */
  strategy: SpeakerRoleStrategy;
  /** Role names in order; default {@link DEFAULT_SPEAKER_ROLES}. */
  roles?: string[];
  /** Keywords or phrases per role (matched case-insensitively on whole words); default {@link DEFAULT_ROLE_KEYWORDS} for the roles it knows, none for others. */
  keywords?: Record<string, string[]>;
}

/** Lower-case word tokens; apostrophes inside words are kept (`i've`), typographic ones folded. */
function tokens(text: string): string[] {
  return text.toLowerCase().replace(/[\u2018\u2019]/g, "'").match(/[\p{L}\p{N}]+(?:'[\p{L}\p{N}]+)*/gu) ?? [];
}

/** Occurrences of `phrase` (a token sequence) in `run` as whole consecutive tokens. */
function countPhrase(run: string[], phrase: string[]): number {
  if (phrase.length === 0 || phrase.length > run.length) return 0;
  let hits = 0;
  for (let i = 0; i + phrase.length <= run.length; i++) {
    let match = true;
    for (let k = 0; k < phrase.length && match; k++) match = run[i + k] === phrase[k];
    if (match) hits++;
  }
  return hits;
}

/**
 * Speakers in order of first appearance in time (segment starts and word starts), and each
 * speaker's runs of consecutive tokens: a phrase never spans two speakers or two segments.
 */
function speakerTurns(segments: Segment[]): { order: number[]; runs: Map<number, string[][]> } {
  const appearances: { at: number; tag: number }[] = [];
  const runs = new Map<number, string[][]>();
  const addRun = (tag: number, run: string[]) => {
    if (run.length === 0) return;
    const list = runs.get(tag) ?? [];
    list.push(run);
    runs.set(tag, list);
  };
  for (const segment of segments) {
    if (segment.speaker_tag !== null) appearances.push({ at: segment.start, tag: segment.speaker_tag });
    if (segment.words.length === 0) {
      if (segment.speaker_tag !== null) addRun(segment.speaker_tag, tokens(segment.text));
      continue;
    }
    let current: { tag: number | null; run: string[] } = { tag: null, run: [] };
    for (const word of segment.words) {
      const tag = word.speaker_tag ?? segment.speaker_tag;
      if (tag !== null) appearances.push({ at: word.start, tag });
      if (tag !== current.tag) {
        if (current.tag !== null) addRun(current.tag, current.run);
        current = { tag, run: [] };
      }
      current.run.push(...tokens(word.word));
    }
    if (current.tag !== null) addRun(current.tag, current.run);
  }
  appearances.sort((a, b) => a.at - b.at);
  const order: number[] = [];
  for (const a of appearances) if (!order.includes(a.tag)) order.push(a.tag);
  return { order, runs };
}

/**
 * Names the speakers of a diarized transcript.
 *
 * - `first_speaker`: the speaker who talks first gets `roles[0]`, the next distinct speaker
 *   `roles[1]`, …; speakers beyond the roles get `speaker_<speaker_tag>`.
 * - `keywords`: each speaker scores one point per keyword or phrase hit for each role
 *   (case-insensitive, whole words, within one speaker's run of words). Roles are then given
 *   greedily, highest score first, one speaker per role and one role per speaker; ties (zero
 *   scores included) go to the speaker who talked first, then to the earlier role. Speakers left
 *   without a role get `speaker_<speaker_tag>`.
 *
 * Example: segments `[{speaker_tag: 1, text: "How can I help you today?"}, {speaker_tag: 0, text:
 * "My knee hurts when I climb stairs."}]` (tags as a diarizing engine numbered them):
 * `first_speaker` gives `{"0": "patient", "1": "provider"}` (tag 1 spoke first); `keywords` gives
 * `{"0": "patient", "1": "provider"}` (provider phrase "how can i help"; patient words "my", "hurts").
 *
 * @param segments normalized segments; speakers are read from `speaker_tag` of segments and words
 *   (a word without one belongs to its segment's speaker).
 * @returns `{ "<speaker_tag>": role }` for every speaker present, or null when the strategy is
 *   `none` or no segment or word has a speaker_tag (nothing to name). Never throws.
 */
export function assignSpeakerRoles(segments: Segment[], request: SpeakerRolesRequest): Record<string, string> | null {
  if (request.strategy === 'none') return null;
  const { order, runs } = speakerTurns(segments);
  if (order.length === 0) return null;
  const roles = [...new Set((request.roles?.length ? request.roles : DEFAULT_SPEAKER_ROLES).map((r) => r.trim()).filter((r) => r !== ''))];
  const assigned = new Map<number, string>();

  if (request.strategy === 'first_speaker') {
    order.forEach((tag, i) => {
      if (i < roles.length) assigned.set(tag, roles[i]);
    });
  } else {
    const phrases = roles.map((role) =>
      (request.keywords?.[role] ?? DEFAULT_ROLE_KEYWORDS[role] ?? []).map(tokens).filter((p) => p.length > 0),
    );
    const candidates: { tag: number; rank: number; role: number; score: number }[] = [];
    order.forEach((tag, rank) => {
      const speakerRuns = runs.get(tag) ?? [];
      roles.forEach((_, role) => {
        let score = 0;
        for (const phrase of phrases[role]) for (const run of speakerRuns) score += countPhrase(run, phrase);
        candidates.push({ tag, rank, role, score });
      });
    });
    candidates.sort((a, b) => b.score - a.score || a.rank - b.rank || a.role - b.role);
    const taken = new Set<number>();
    for (const c of candidates) {
      if (assigned.has(c.tag) || taken.has(c.role)) continue;
      assigned.set(c.tag, roles[c.role]);
      taken.add(c.role);
    }
  }

  const result: Record<string, string> = {};
  for (const tag of [...order].sort((a, b) => a - b)) result[String(tag)] = assigned.get(tag) ?? `speaker_${tag}`;
  return result;
}
