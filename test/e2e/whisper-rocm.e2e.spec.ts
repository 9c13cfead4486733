import { parseEnv } from '../../src/config/app-config.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { WhisperRocmConfig, whisperRocmInstance } from '../../src/engines/openai-compatible/openai-compatible.config.js';
import { OpenAiCompatibleEngine } from '../../src/engines/openai-compatible/openai-compatible.engine.js';
import { fixture, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';
import { startOpenAiTranscriptionServer, type OpenAiTranscriptionServer } from '../support/openai-transcription-server.js';

interface StatusView { status: string; progress: number; stage: string; engine: string; error?: Record<string, unknown> }
interface WordView { word: string; start: number; end: number; confidence: number | null; speaker_tag: number | null }
interface ResultView {
  status: string; language: string | null; duration: number; text: string; engine: string; model: string | null; warnings: string[];
  segments: { start: number; end: number; text: string; confidence: number | null; words: WordView[] }[];
}

/** The whisper-rocm adapter built from the environment, as in production, pointed at the test server. */
const whisperRocm = (url: string) => new OpenAiCompatibleEngine(whisperRocmInstance(parseEnv(WhisperRocmConfig, { WHISPER_ROCM_URL: url }).value));
const pocketsphinx = () => buildEngines({}).engines.find((e) => e.id === 'pocketsphinx')!;
const jobRow = async (gw: TestGateway, jobId: string) => (await gw.db.query('SELECT * FROM transcript_jobs WHERE job_id = $1', [jobId]))[0];

describe('whisper-rocm through the gateway (HTTP, queue, worker, SSE) against an OpenAI-protocol server', () => {
  let server: OpenAiTranscriptionServer;
  const gateways: TestGateway[] = [];

  beforeEach(async () => {
    server = await startOpenAiTranscriptionServer();
  });
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.close()));
    await server.close();
  });

  it('transcribes a job submitted with engine=whisper-rocm and stores the server\'s words', async () => {
    const gw = await startGateway(testConfig(), [pocketsphinx(), whisperRocm(server.url)]);
    gateways.push(gw);
    // The whole recording (vad_filter=false): the server's word times and the WAV it received are checked exactly.
    const submitted = await submit(gw.url, fixture('jfk.mp3'), { engine: 'whisper-rocm', language: 'en-US', vad_filter: 'false' });
    expect(submitted.status).toBe(202);
    expect(submitted.body).toMatchObject({ engine: 'whisper-rocm', status: 'queued' });
    const jobId = submitted.body.job_id as string;

    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${jobId}`);
    expect(events[events.length - 1]).toMatchObject({ status: 'completed', progress: 100, engine: 'whisper-rocm' });

    const { status, body } = await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${jobId}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ engine: 'whisper-rocm', model: 'whisper-1', language: 'en', warnings: [] });
    expect(body.text).toBe('And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.');
    const words = body.segments.flatMap((s) => s.words);
    expect(words.map((w) => w.word).join(' ')).toBe(body.text);
    expect(words[0].start).toBeCloseTo(0.06 * (body.duration / 11), 2);
    for (const s of body.segments) for (const w of s.words) expect(w.start >= s.start && w.end <= s.end).toBe(true);

    // The worker decoded the MP3 and sent the gateway's 16 kHz mono WAV, once.
    const [request] = server.transcriptions();
    expect(server.transcriptions()).toHaveLength(1);
    expect(request.file!.wav).toMatchObject({ sampleRate: 16_000, channels: 1, bitsPerSample: 16 });
    expect(request.file!.wav!.durationSec).toBeCloseTo(body.duration, 1);
    expect(request.fields.language).toEqual(['en']);
    expect(await jobRow(gw, jobId)).toMatchObject({ engine: 'whisper-rocm', attempts: 1, error_details: null });
  });

  it('retries after the server answers 500 once and completes on the second attempt', async () => {
    server.enqueue({ kind: 'server_error' });
    const gw = await startGateway(testConfig({ JOB_MAX_RETRIES: '3', JOB_BACKOFF_MS: '100' }), [pocketsphinx(), whisperRocm(server.url)]);
    gateways.push(gw);
    const submitted = await submit(gw.url, fixture('jfk.wav'), { engine: 'whisper-rocm' });
    const jobId = submitted.body.job_id as string;
    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${jobId}`);
    expect(events[events.length - 1]).toMatchObject({ status: 'completed' });
    expect(server.transcriptions().map((r) => r.status)).toEqual([500, 200]);
    const row = await jobRow(gw, jobId);
    expect(row).toMatchObject({ engine: 'whisper-rocm', attempts: 2, error_details: null });
    expect(row.completed_at).toBeInstanceOf(Date);
  });
});
