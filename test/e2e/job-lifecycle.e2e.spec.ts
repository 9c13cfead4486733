import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { buildEngines } from '../../src/engines/engines.module.js';
import { QueueName } from '../../src/transcription/job-catalog.js';
import { fixture, testConfig } from '../support/env.js';
import { FlakyEngine } from '../support/flaky-engine.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';

interface StatusView { status: string; progress: number; stage: string; worker_id: string | null; error?: Record<string, unknown>; result?: { segments_count: number; duration: number } }

const pocketsphinx = () => buildEngines({}).engines[0];
const jobRow = async (gw: TestGateway, jobId: string) =>
  (await gw.db.query('SELECT j.*, t.status AS transcript_status FROM transcript_jobs j JOIN transcripts t ON t.id = j.transcript_id WHERE j.job_id = $1', [jobId]))[0];

describe('job lifecycle: retries, failures, roles, status after Redis expiry', () => {
  const gateways: TestGateway[] = [];
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.close()));
  });

  it('retries a retryable engine failure with backoff and completes, keeping transcript_jobs up to date', async () => {
    const flaky = new FlakyEngine(pocketsphinx(), 2, { code: 'ENGINE_UNAVAILABLE', retryable: true });
    const gw = await startGateway(testConfig({ JOB_MAX_RETRIES: '3', JOB_BACKOFF_MS: '100' }), [flaky]);
    gateways.push(gw);
    const { body } = await submit(gw.url, fixture('goforward.wav'));
    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`);
    expect(events[events.length - 1]).toMatchObject({ status: 'completed' });
    expect(flaky.calls).toBe(3);
    const row = await jobRow(gw, body.job_id as string);
    expect(row).toMatchObject({ attempts: 3, max_retries: 3, transcript_status: 'completed', error_details: null, engine: 'pocketsphinx' });
    expect(row.worker_id).toMatch(/^.+:\d+$/);
    expect(row.started_at).toBeInstanceOf(Date);
    expect(row.completed_at.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
  });

  it('fails at once on a non-retryable error, with error_details, and the stream ends with failed', async () => {
    const flaky = new FlakyEngine(pocketsphinx(), 99, { code: 'ENGINE_REJECTED', retryable: false });
    const gw = await startGateway(testConfig({ JOB_MAX_RETRIES: '3' }), [flaky]);
    gateways.push(gw);
    const { body } = await submit(gw.url, fixture('goforward.wav'));
    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`);
    const last = events[events.length - 1];
    expect(last.status).toBe('failed');
    expect(last.error).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false, attempt: 1, final: true });
    expect(flaky.calls).toBe(1);
    const row = await jobRow(gw, body.job_id as string);
    expect(row).toMatchObject({ attempts: 1, transcript_status: 'failed' });
    expect(row.error_details).toMatchObject({ code: 'ENGINE_REJECTED', message: 'injected failure 1', internal: { injected: true } });
    expect(row.completed_at).toBeInstanceOf(Date);
    const result = await getJson(`${gw.url}/api/transcribe/jobs/result/${body.job_id}`);
    expect(result.status).toBe(409);
    expect(result.body).toMatchObject({ code: 'JOB_NOT_COMPLETED', status: 'failed' });
  });

  it('gives up after max_retries retryable failures (1 + max_retries attempts)', async () => {
    const flaky = new FlakyEngine(pocketsphinx(), 99, { code: 'ENGINE_TIMEOUT', retryable: true });
    const gw = await startGateway(testConfig({ JOB_MAX_RETRIES: '2', JOB_BACKOFF_MS: '50' }), [flaky]);
    gateways.push(gw);
    const { body } = await submit(gw.url, fixture('goforward.wav'));
    const events = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`);
    expect(events[events.length - 1]).toMatchObject({ status: 'failed' });
    expect(flaky.calls).toBe(3);
    expect(await jobRow(gw, body.job_id as string)).toMatchObject({ attempts: 3, transcript_status: 'failed', error_details: expect.objectContaining({ code: 'ENGINE_TIMEOUT', attempt: 3, final: true }) });
  });

  it('runs api and worker as separate roles against the same Redis and Postgres', async () => {
    const shared = testConfig();
    const api = await startGateway(Object.assign(testConfig(), shared, { APP_ROLE: 'api' }));
    gateways.push(api);
    const { body } = await submit(api.url, fixture('libri_0880.wav'));
    // Nothing processes it while only the API runs.
    await new Promise((r) => setTimeout(r, 500));
    expect((await getJson<StatusView>(`${api.url}/api/transcribe/jobs/status/${body.job_id}`)).body).toMatchObject({ status: 'queued', progress: 0, worker_id: null });
    const worker = await startGateway(Object.assign(testConfig(), shared, { APP_ROLE: 'worker' }));
    gateways.push(worker);
    const events = await followStream<StatusView>(`${api.url}/api/transcribe/jobs/stream/${body.job_id}`);
    // The worker may already have taken the job when the stream opens.
    expect(['queued', 'processing']).toContain(events[0].status);
    expect(events[events.length - 1]).toMatchObject({ status: 'completed', progress: 100 });
    expect(() => worker.app.get(getQueueToken(QueueName.Transcription))).not.toThrow();
  });

  it('answers status from Postgres once Redis no longer holds the job', async () => {
    const gw = await startGateway(testConfig());
    gateways.push(gw);
    const { body } = await submit(gw.url, fixture('goforward.wav'));
    await followStream(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`);
    const fromRedis = (await getJson<StatusView>(`${gw.url}/api/transcribe/jobs/status/${body.job_id}`)).body;
    const queue = gw.app.get<Queue>(getQueueToken(QueueName.Transcription));
    await queue.remove(body.job_id as string);
    expect(await queue.getJob(body.job_id as string)).toBeUndefined();
    const fromDb = (await getJson<StatusView>(`${gw.url}/api/transcribe/jobs/status/${body.job_id}`)).body;
    expect(fromDb).toMatchObject({ status: 'completed', progress: 100, worker_id: fromRedis.worker_id, result: fromRedis.result });
    const stream = await followStream<StatusView>(`${gw.url}/api/transcribe/jobs/stream/${body.job_id}`, 5000);
    expect(stream).toHaveLength(1);
    expect((await getJson(`${gw.url}/api/transcribe/jobs/result/${body.job_id}`)).status).toBe(200);
  });

  it('expires finished jobs from Redis after REDIS_JOB_TTL', async () => {
    const gw = await startGateway(testConfig({ REDIS_JOB_TTL: '1' }));
    gateways.push(gw);
    const first = await submit(gw.url, fixture('goforward.wav'));
    await followStream(`${gw.url}/api/transcribe/jobs/stream/${first.body.job_id}`);
    await new Promise((r) => setTimeout(r, 1500));
    // BullMQ trims finished jobs by age when the next job finishes.
    const second = await submit(gw.url, fixture('goforward.wav'));
    await followStream(`${gw.url}/api/transcribe/jobs/stream/${second.body.job_id}`);
    const queue = gw.app.get<Queue>(getQueueToken(QueueName.Transcription));
    expect(await queue.getJob(first.body.job_id as string)).toBeUndefined();
    expect((await getJson<StatusView>(`${gw.url}/api/transcribe/jobs/status/${first.body.job_id}`)).body).toMatchObject({ status: 'completed' });
  });
});
