import { fixture, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';
import { wordErrorRate } from '../support/wer.js';

interface ResultView {
  text: string;
  speaker_roles: Record<string, string> | null;
  segments: { start: number; speaker_tag: number | null; words: { word: string; start: number; speaker_tag: number | null }[] }[];
}

// fixtures/README.md: two speakers, one per channel, overlapping in time.
const LEFT = 'he began a confused complaint against the wizard who had vanished behind the curtain on the left';
const RIGHT = 'the horizon seems extremely distant';

describe('multichannel speakers and speaker roles (pocketsphinx, real stereo recording)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway(testConfig());
  });
  afterAll(async () => gw?.close());

  it('transcribes each channel on its own, tags words with the channel, and assigns roles by first speaker', async () => {
    const { status, body } = await submit(gw.url, fixture('fw_stereo_diarization.wav'), {
      multichannel: 'true', speaker_roles: 'first_speaker', speaker_role_names: 'agent,caller',
    });
    expect(status).toBe(202);
    const events = await followStream<{ status: string; chunks_total?: number }>(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`);
    expect(events[events.length - 1].status).toBe('completed');
    expect(Math.max(...events.map((e) => e.chunks_total ?? 0))).toBe(2);
    const result = (await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${body.job_id}`)).body;

    const words = result.segments.flatMap((s) => s.words);
    for (const s of result.segments) for (const w of s.words) expect(w.speaker_tag).toBe(s.speaker_tag);
    const starts = words.map((w) => w.start);
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
    const side = (tag: number) => words.filter((w) => w.speaker_tag === tag).map((w) => w.word).join(' ');
    const left = side(0);
    const right = side(1);
    expect(left.length).toBeGreaterThan(0);
    expect(right.length).toBeGreaterThan(0);
    // Each side is recognisably its own speaker's sentence: closer to its reference than to the other's.
    expect(wordErrorRate([{ reference: RIGHT, hypothesis: right }])).toBeLessThan(wordErrorRate([{ reference: LEFT, hypothesis: right }]));
    expect(wordErrorRate([{ reference: LEFT, hypothesis: left }])).toBeLessThan(wordErrorRate([{ reference: RIGHT, hypothesis: left }]));
    const first = result.segments[0].speaker_tag!;
    expect(result.speaker_roles).toEqual({ [String(first)]: 'agent', [String(1 - first)]: 'caller' });
  });

  it('refuses multichannel on a mono recording with a clear 400', async () => {
    const res = await submit(gw.url, fixture('goforward.wav'), { multichannel: 'true' });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/2 or more channels; this one has 1/);
  });

  it('rejects malformed speaker role options', async () => {
    const bad = await submit(gw.url, fixture('goforward.wav'), { speaker_roles: 'keywords', speaker_role_keywords: '{"provider": "pain"}' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/speaker_role_keywords must be a JSON object/);
    const strategy = await submit(gw.url, fixture('goforward.wav'), { speaker_roles: 'loudest' });
    expect(strategy.status).toBe(400);
    expect(JSON.stringify(strategy.body.message)).toMatch(/speaker_roles must be one of: none, first_speaker, keywords/);
  });
});
