import type { INestApplication } from '@nestjs/common';
import { Injectable } from '@nestjs/common';
import { EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { GatewayError } from '../../src/common/gateway-error.js';
import { ConfigModule } from '../../src/config/config.module.js';
import { dataSourceOptions } from '../../src/database/data-source.js';
import type { TranscriptionResult } from '../../src/engines/engine.spec.js';
import { TranscriptsModule } from '../../src/transcripts/transcripts.module.js';
import { AttemptFailure } from '../../src/transcription/failure.js';
import type { TranscribeStepData } from '../../src/transcription/job-catalog.js';
import { JobLifecycle, type AttemptRef } from '../../src/transcription/job-lifecycle.service.js';
import { JobRepository } from '../../src/transcription/job.repository.js';
import { TranscriptJobEntity } from '../../src/transcription/transcript-job.entity.js';
import { TranscriptionEvent, TranscriptionEvents } from '../../src/transcription/transcription.events.js';
import { TEST_DATABASE_URL, testConfig } from '../support/env.js';

/** Records every lifecycle event, as metrics and webhooks would see them. */
@Injectable()
class EventLog {
  readonly events: { name: string; payload: Record<string, unknown> }[] = [];
  @OnEvent(TranscriptionEvent.Completed) completed(payload: Record<string, unknown>): void { this.events.push({ name: 'completed', payload }); }
  @OnEvent(TranscriptionEvent.Failed) failed(payload: Record<string, unknown>): void { this.events.push({ name: 'failed', payload }); }
  @OnEvent(TranscriptionEvent.AttemptFailed) attemptFailed(payload: Record<string, unknown>): void { this.events.push({ name: 'attempt-failed', payload }); }
  @OnEvent(TranscriptionEvent.AttemptStarted) started(payload: Record<string, unknown>): void { this.events.push({ name: 'attempt-started', payload }); }
  @OnEvent(TranscriptionEvent.Cancelled) cancelled(payload: Record<string, unknown>): void { this.events.push({ name: 'cancelled', payload }); }
  named(name: string) { return this.events.filter((e) => e.name === name).map((e) => e.payload); }
}

class EngineTimeout extends GatewayError {
  readonly code = 'ENGINE_TIMEOUT';
  constructor(retryable = true) {
    super('the engine did not answer in time', { status: 504, retryable, publicFields: { engine: 'riva' }, details: { url: 'http://10.9.8.7:50051/asr' } });
  }
}

const RESULT: TranscriptionResult = {
  text: 'hello world', language: 'en', duration_sec: 2,
  segments: [{ start: 0, end: 2, text: 'hello world', speaker_tag: null, confidence: 0.9, words: [] }],
  warnings: [], engine: { id: 'pocketsphinx', model: 'en-us' },
};

describe('JobRepository and JobLifecycle (Postgres): state transitions and events', () => {
  let app: INestApplication;
  let repo: JobRepository;
  let lifecycle: JobLifecycle;
  let log: EventLog;
  let db: DataSource;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        ConfigModule.forRoot(testConfig()),
        TypeOrmModule.forRoot(dataSourceOptions(TEST_DATABASE_URL)),
        TypeOrmModule.forFeature([TranscriptJobEntity]),
        TranscriptsModule,
        EventEmitterModule.forRoot(),
      ],
      providers: [JobRepository, JobLifecycle, TranscriptionEvents, EventLog],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    repo = app.get(JobRepository);
    lifecycle = app.get(JobLifecycle);
    log = app.get(EventLog);
    db = app.get(DataSource);
  });
  afterAll(async () => {
    await app?.close();
  });
  beforeEach(() => {
    log.events.length = 0;
  });

  /** A queued job with its transcript; returns what the lifecycle needs. */
  async function queuedJob(callbackUrl: string | null = null): Promise<{ jobId: string; data: TranscribeStepData }> {
    const jobId = randomUUID();
    const transcriptId = randomUUID();
    await repo.create(
      { id: transcriptId, sessionId: null, filename: 'a.wav', audioKey: `audio/${transcriptId}/a.wav`, mimeType: 'audio/wav', sizeBytes: 10, durationSec: 2, language: null, metadata: {} },
      { jobId, engine: 'pocketsphinx', engineParams: {}, callbackUrl, maxRetries: 2 },
    );
    return { jobId, data: { step: 'transcribe', transcriptId, engine: 'pocketsphinx', audioKey: 'k', options: {}, multichannel: false, keyLabel: 'key-1' } };
  }
  const ref = (jobId: string, attempt: number, maxAttempts = 3, signal = new AbortController().signal): AttemptRef => ({ jobId, attempt, maxAttempts, signal });
  const row = async (jobId: string) => {
    const [r] = await db.query(
      `SELECT j.attempts, j.started_at, j.completed_at, j.error_details, j.worker_id, t.status, t.text FROM transcript_jobs j JOIN transcripts t ON t.id = j.transcript_id WHERE j.job_id = $1`,
      [jobId],
    );
    return r as { attempts: number; started_at: Date | null; completed_at: Date | null; error_details: Record<string, unknown> | null; worker_id: string | null; status: string; text: string | null };
  };

  it('queued → processing → completed, once; a re-run replays the completion without writing again', async () => {
    const { jobId, data } = await queuedJob('https://hooks.example/x');
    expect(await row(jobId)).toMatchObject({ status: 'queued', attempts: 0, started_at: null });

    await lifecycle.attemptStarted(ref(jobId, 1), data, 'pocketsphinx');
    const started = await row(jobId);
    expect(started).toMatchObject({ status: 'processing', attempts: 1 });
    expect(started.started_at).toBeInstanceOf(Date);
    expect(started.worker_id).toMatch(/:\d+$/);

    await lifecycle.attemptStarted(ref(jobId, 2), data, 'pocketsphinx');
    expect((await row(jobId)).started_at).toEqual(started.started_at);

    expect(await lifecycle.completed(ref(jobId, 2), data, RESULT, { processingSec: 1.5 })).toEqual({ segments_count: 1, duration: 2 });
    expect(await row(jobId)).toMatchObject({ status: 'completed', text: 'hello world', error_details: null });
    expect(log.named('completed')).toEqual([expect.objectContaining({ jobId, engine: 'pocketsphinx', processingSec: 1.5, callbackUrl: 'https://hooks.example/x', replayed: false, keyLabel: 'key-1' })]);

    // A worker that died after saving: the next run finds the result and replays the event.
    expect(await lifecycle.completed(ref(jobId, 3), data, { ...RESULT, text: 'changed' }, {})).toEqual({ segments_count: 1, duration: 2 });
    expect((await row(jobId)).text).toBe('hello world');
    expect(log.named('completed')[1]).toMatchObject({ replayed: true, text: 'hello world' });
  });

  it('a retryable failure keeps the job processing; the last attempt ends it; later failures keep the first cause', async () => {
    const { jobId, data } = await queuedJob('https://hooks.example/y');
    await lifecycle.attemptStarted(ref(jobId, 1), data, 'pocketsphinx');

    const first = await lifecycle.attemptFailed(ref(jobId, 1), data, new EngineTimeout());
    expect(first).toBeInstanceOf(AttemptFailure);
    expect(first.retryable).toBe(true);
    expect(await row(jobId)).toMatchObject({ status: 'processing', completed_at: null, error_details: { code: 'ENGINE_TIMEOUT', attempt: 1, final: false } });
    expect(log.named('failed')).toEqual([]);

    await lifecycle.attemptFailed(ref(jobId, 3), data, new EngineTimeout());
    const ended = await row(jobId);
    expect(ended).toMatchObject({ status: 'failed', error_details: { code: 'ENGINE_TIMEOUT', attempt: 3, final: true, internal: { url: 'http://10.9.8.7:50051/asr' } } });
    expect(ended.completed_at).toBeInstanceOf(Date);
    // Subscribers (webhooks, metrics) get the public part only.
    const [failed] = log.named('failed');
    expect(failed).toMatchObject({ jobId, callbackUrl: 'https://hooks.example/y', error: { code: 'ENGINE_TIMEOUT', engine: 'riva', final: true } });
    expect(JSON.stringify(failed)).not.toContain('10.9.8.7');

    // A sibling chunk failing afterwards changes nothing and emits no second Failed.
    await lifecycle.attemptFailed(ref(jobId, 1), data, new Error('audio removed'), { index: 4, total: 6, startSec: 240, endSec: 300, channel: null });
    expect((await row(jobId)).error_details).toMatchObject({ code: 'ENGINE_TIMEOUT', attempt: 3 });
    expect(log.named('failed')).toHaveLength(1);
    expect(log.named('attempt-failed').map((e) => e.final)).toEqual([false, true, false]);

    // A completion after the end is refused, not written.
    await expect(lifecycle.completed(ref(jobId, 3), data, RESULT, {})).rejects.toMatchObject({ retryable: false, message: expect.stringMatching(/cancelled/) });
    expect((await row(jobId)).status).toBe('failed');
  });

  it('a chunk failure says which chunk and which part of the recording failed, never a queue key', async () => {
    const a = await queuedJob();
    const failure = await lifecycle.attemptFailed(ref(a.jobId, 1), a.data, new EngineTimeout(false), { index: 5, total: 10, startSec: 300, endSec: 360.5, channel: null });
    expect(failure.message).toMatch(/^chunk 6 of 10 \(recording 5:00–6:00\) failed: ./);
    const { error_details: details } = await row(a.jobId);
    expect(details).toMatchObject({ chunk: 5, chunk_start_sec: 300, chunk_end_sec: 360.5, final: true, message: failure.message });
    expect(JSON.stringify(details)).not.toMatch(/chunks-|-p5/);

    const b = await queuedJob();
    const stereo = await lifecycle.attemptFailed(ref(b.jobId, 1), b.data, new EngineTimeout(false), { index: 1, total: 2, startSec: 0, endSec: 3725, channel: 1 });
    expect(stereo.message).toMatch(/^chunk 2 of 2 \(recording 0:00–1:02:05, channel 2\) failed: /);
  });

  it('a non-retryable failure ends the job at once; an aborted attempt is recorded as cancelled', async () => {
    const a = await queuedJob();
    const failure = await lifecycle.attemptFailed(ref(a.jobId, 1), a.data, new EngineTimeout(false));
    expect(failure.retryable).toBe(false);
    expect(await row(a.jobId)).toMatchObject({ status: 'failed', error_details: { final: true, retryable: false } });

    const b = await queuedJob();
    const controller = new AbortController();
    controller.abort();
    await lifecycle.attemptFailed(ref(b.jobId, 1, 3, controller.signal), b.data, new EngineTimeout(true));
    expect(await row(b.jobId)).toMatchObject({ status: 'failed', error_details: { code: 'JOB_CANCELLED', final: true } });
  });

  it('DELETE cancels a running job once; its late result is discarded', async () => {
    const { jobId, data } = await queuedJob();
    await lifecycle.attemptStarted(ref(jobId, 1), data, 'pocketsphinx');
    expect(await lifecycle.cancelled(jobId, data.transcriptId, 'pocketsphinx')).toBe(true);
    expect(await row(jobId)).toMatchObject({ status: 'failed', error_details: { code: 'JOB_CANCELLED' } });
    expect(await lifecycle.cancelled(jobId, data.transcriptId, 'pocketsphinx')).toBe(false);
    expect(log.named('cancelled')).toEqual([{ jobId, transcriptId: data.transcriptId, engine: 'pocketsphinx' }]);
    await expect(lifecycle.completed(ref(jobId, 1), data, RESULT, {})).rejects.toBeInstanceOf(AttemptFailure);
    expect(log.named('completed')).toEqual([]);
  });

  it('the repository deletes a job row with its transcript', async () => {
    const { jobId, data } = await queuedJob();
    expect(await repo.find(jobId)).toMatchObject({ jobId, transcript: { id: data.transcriptId } });
    await repo.delete(data.transcriptId);
    expect(await repo.find(jobId)).toBeNull();
    expect(await db.query('SELECT 1 FROM transcripts WHERE id = $1', [data.transcriptId])).toEqual([]);
  });
});
