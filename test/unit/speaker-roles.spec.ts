import type { Segment } from '../../src/engines/engine.spec.js';
import { mapWhisperxJson, type WhisperxJson } from '../../src/engines/whisperx/whisperx.mapper.js';
import { assignSpeakerRoles, SPEAKER_ROLE_STRATEGIES } from '../../src/transcripts/speaker-roles.js';
import { whisperxJson, type WhisperxJsonOptions } from '../support/asr-webservice-server.js';

/** The gateway's normalized segments for what the WhisperX test server answers on the 32 s dialogue fixture. */
const diarized = (options: Partial<WhisperxJsonOptions> = {}): Segment[] =>
  mapWhisperxJson(whisperxJson({ durationSec: 32, language: null, diarize: true, ...options }) as unknown as WhisperxJson, 32).segments;

/** Ten alternating turns of a clinical visit in which the patient talks first. */
const VISIT = [
  'Good morning. My knee hurts since Tuesday.',
  'Good morning, I am the doctor on call. How can I help?',
  'The pain is worse on the stairs and I feel it at night.',
  'Any allergies? Let me check the knee and do a short exam.',
  'No allergies. My medication is just ibuprofen.',
  'I will prescribe a stronger one and refer you to physiotherapy.',
  'Thank you. Will it hurt less soon?',
  'The diagnosis is a strain; symptoms should ease within two weeks.',
  'Great, thanks.',
  'Come back for a follow up if it does not.',
];

const segment = (speaker_tag: number | null, start: number, text: string): Segment => ({ start, end: start + 2, text, speaker_tag, confidence: null, words: [] });

describe('assignSpeakerRoles', () => {
  it('lists its strategies for DTO validation', () => {
    expect(SPEAKER_ROLE_STRATEGIES).toEqual(['none', 'first_speaker', 'keywords']);
  });

  it('first_speaker: the first to talk gets the first role, the next distinct speaker the second', () => {
    const segments = diarized();
    expect(new Set(segments.map((s) => s.speaker_tag))).toEqual(new Set([0, 1]));
    expect(assignSpeakerRoles(segments, { strategy: 'first_speaker' })).toEqual({ 0: 'provider', 1: 'patient' });
    expect(assignSpeakerRoles(segments, { strategy: 'first_speaker', roles: ['interviewer', 'guest'] })).toEqual({ 0: 'interviewer', 1: 'guest' });
  });

  it('first_speaker follows time, not tag numbers', () => {
    const segments = [segment(1, 0, 'Hello there.'), segment(0, 3, 'Hi.'), segment(1, 6, 'How are you?')];
    expect(assignSpeakerRoles(segments, { strategy: 'first_speaker' })).toEqual({ 0: 'patient', 1: 'provider' });
  });

  it('keywords: finds the provider even when the patient talks first', () => {
    const segments = diarized({ lines: VISIT });
    expect(assignSpeakerRoles(segments, { strategy: 'first_speaker' })).toEqual({ 0: 'provider', 1: 'patient' });
    expect(assignSpeakerRoles(segments, { strategy: 'keywords' })).toEqual({ 0: 'patient', 1: 'provider' });
  });

  it('keywords: counts whole words and phrases only, case-insensitively', () => {
    // Substrings would score speaker 0 as the patient ("pain", "my") and the provider ("exam");
    // as whole words only speaker 1's "MY" counts.
    const segments = [segment(0, 0, 'Examples of painting by myself.'), segment(1, 3, 'MY knee.')];
    expect(assignSpeakerRoles(segments, { strategy: 'keywords' })).toEqual({ 0: 'provider', 1: 'patient' });
    const reversed = [segment(0, 0, 'What is the Diagnosis, doctor?'), segment(1, 3, 'It says how can I, and then help.')];
    // "how can i help" is not in the second line as a phrase; "diagnosis" and "doctor" are in the first.
    expect(assignSpeakerRoles(reversed, { strategy: 'keywords' })).toEqual({ 0: 'provider', 1: 'patient' });
  });

  it('keywords: custom roles and keyword lists', () => {
    const segments = [segment(0, 0, 'I would like a refund for my order.'), segment(1, 3, 'Thank you for calling support, how may I assist you?')];
    const request = { strategy: 'keywords' as const, roles: ['agent', 'customer'], keywords: { agent: ['thank you for calling', 'assist'], customer: ['refund', 'my order'] } };
    expect(assignSpeakerRoles(segments, request)).toEqual({ 0: 'customer', 1: 'agent' });
  });

  it('more than two speakers: extra speakers get speaker_<tag>', () => {
    // Turns 5 and 6 (0-based 4 and 5) go to a third voice that first talks at 12.3 s.
    const segments = diarized({ lines: VISIT, relabel: (turn, label) => (turn === 4 || turn === 5 ? 'SPEAKER_02' : label) });
    expect(new Set(segments.map((s) => s.speaker_tag))).toEqual(new Set([0, 1, 2]));
    expect(assignSpeakerRoles(segments, { strategy: 'first_speaker' })).toEqual({ 0: 'provider', 1: 'patient', 2: 'speaker_2' });
    const roles = assignSpeakerRoles(segments, { strategy: 'keywords' })!;
    expect(roles).toEqual({ 0: 'patient', 1: 'provider', 2: 'speaker_2' });
    expect(assignSpeakerRoles(segments, { strategy: 'first_speaker', roles: ['a', 'b', 'c'] })).toEqual({ 0: 'a', 1: 'b', 2: 'c' });
  });

  it('reads word-level speakers where they differ from the segment', () => {
    const words = [
      { word: 'How', start: 0, end: 0.2, confidence: 0.9, speaker_tag: 0 },
      { word: 'can', start: 0.2, end: 0.4, confidence: 0.9, speaker_tag: 0 },
      { word: 'I', start: 0.4, end: 0.5, confidence: 0.9, speaker_tag: 0 },
      { word: 'help?', start: 0.5, end: 0.8, confidence: 0.9, speaker_tag: 0 },
      { word: 'My', start: 1.0, end: 1.2, confidence: 0.9, speaker_tag: 1 },
      { word: 'back', start: 1.2, end: 1.4, confidence: 0.9, speaker_tag: 1 },
      { word: 'hurts.', start: 1.4, end: 1.8, confidence: 0.9, speaker_tag: 1 },
    ];
    const one: Segment = { start: 0, end: 2, text: 'How can I help? My back hurts.', speaker_tag: 0, confidence: 0.9, words };
    expect(assignSpeakerRoles([one], { strategy: 'keywords', roles: ['patient', 'provider'] })).toEqual({ 0: 'provider', 1: 'patient' });
  });

  it('matches the docstring example', () => {
    const segments = [segment(1, 0, 'How can I help you today?'), segment(0, 3, 'My knee hurts when I climb stairs.')];
    expect(assignSpeakerRoles(segments, { strategy: 'first_speaker' })).toEqual({ 0: 'patient', 1: 'provider' });
    expect(assignSpeakerRoles(segments, { strategy: 'keywords' })).toEqual({ 0: 'patient', 1: 'provider' });
  });

  it('returns null for strategy none, for results without speakers, and for no segments', () => {
    expect(assignSpeakerRoles(diarized(), { strategy: 'none' })).toBeNull();
    const undiarized = mapWhisperxJson(whisperxJson({ durationSec: 32, language: null, diarize: false }) as unknown as WhisperxJson, 32).segments;
    expect(undiarized.length).toBe(10);
    expect(assignSpeakerRoles(undiarized, { strategy: 'first_speaker' })).toBeNull();
    expect(assignSpeakerRoles(undiarized, { strategy: 'keywords' })).toBeNull();
    expect(assignSpeakerRoles([], { strategy: 'keywords' })).toBeNull();
  });
});
