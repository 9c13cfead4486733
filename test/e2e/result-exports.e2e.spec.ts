import { fixture, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';

describe('result exports over HTTP', () => {
  let gw: TestGateway;
  let jobId: string;
  let resultUrl: string;
  beforeAll(async () => {
    gw = await startGateway(testConfig());
    const { body } = await submit(gw.url, fixture('goforward.wav'));
    jobId = body.job_id as string;
    const events = await followStream<{ status: string }>(`${gw.url}/api/transcribe/jobs/stream/${jobId}`);
    expect(events.at(-1)!.status).toBe('completed');
    resultUrl = `${gw.url}/api/transcribe/jobs/result/${jobId}`;
  });
  afterAll(async () => gw?.close());

  it('serves JSON by default and each export by query or Accept', async () => {
    const json = await getJson<{ segments: { start: number; end: number; text: string }[]; text: string }>(resultUrl);
    expect(json.status).toBe(200);
    expect(json.body.segments.length).toBeGreaterThan(0);

    const srt = await fetch(`${resultUrl}?format=srt`, { headers: { Accept: 'text/vtt' } });
    expect(srt.status).toBe(200);
    expect(srt.headers.get('content-type')).toBe('application/x-subrip; charset=utf-8');
    expect(srt.headers.get('content-disposition')).toBe('attachment; filename=goforward.srt');
    expect(srt.headers.get('vary')).toMatch(/Accept/);
    const srtText = await srt.text();
    expect(srtText).toMatch(/^1\n\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}\n/);

    const vtt = await fetch(resultUrl, { headers: { Accept: 'text/vtt' } });
    expect(vtt.headers.get('content-type')).toBe('text/vtt; charset=utf-8');
    expect(vtt.headers.get('content-disposition')).toBe('attachment; filename=goforward.vtt');
    const vttText = await vtt.text();
    expect(vttText.startsWith('WEBVTT\n\n')).toBe(true);

    const txt = await fetch(`${resultUrl}?format=txt`);
    expect(txt.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect((await txt.text()).trim().length).toBeGreaterThan(0);
  });

  it('answers 400 with the accepted formats for an unknown format', async () => {
    const bad = await getJson(`${resultUrl}?format=docx`);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'UNSUPPORTED_FORMAT', accepted_formats: ['json', 'txt', 'srt', 'vtt'] });
    const twice = await getJson(`${resultUrl}?format=srt&format=vtt`);
    expect(twice.status).toBe(400);
  });
});
