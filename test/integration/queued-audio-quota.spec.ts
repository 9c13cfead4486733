/**
 * The queued-audio quota's self-repair against real Redis and Postgres: seconds held by jobs that
 * ended without giving them back are returned when their key hits its limit; seconds of open jobs
 * and of submissions still writing their rows are not.
 */
import { jest } from '@jest/globals';
import type { Config } from '@jest/types';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { redisConnection } from '../../src/common/redis.js';
import { ConfigModule } from '../../src/config/config.module.js';
import { dataSourceOptions } from '../../src/database/data-source.js';
import { TranscriptsModule } from '../../src/transcripts/transcripts.module.js';
import { JobRepository } from '../../src/transcription/job.repository.js';
import { QueuedAudioQuota, QuotaError, STALE_RESERVATION_MS } from '../../src/transcription/queued-audio-quota.js';
import { TranscriptJobEntity } from '../../src/transcription/transcript-job.entity.js';
import { TEST_DATABASE_URL, testConfig } from '../support/env.js';

/** Only Date is faked: Redis and Postgres keep their real timers. */
const DATE_ONLY: Config.FakeTimersConfig = { doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] };

describe('queued-audio quota: stale reservations are given back when a key hits its limit (Redis + Postgres)', () => {
  const config = testConfig({ MAX_QUEUED_AUDIO_SECONDS_PER_KEY: '100', QUEUE_PREFIX: `quota-${randomUUID().slice(0, 8)}` });
  let app: INestApplication;
  let quota: QueuedAudioQuota;
  let repo: JobRepository;
  let db: DataSource;

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [ConfigModule.forRoot(config), TypeOrmModule.forRoot(dataSourceOptions(TEST_DATABASE_URL)), TypeOrmModule.forFeature([TranscriptJobEntity]), TranscriptsModule],
      providers: [JobRepository, QueuedAudioQuota],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    quota = app.get(QueuedAudioQuota);
    repo = app.get(JobRepository);
    db = app.get(DataSource);
  });
  afterAll(async () => {
    jest.useRealTimers();
    const redis = new Redis(redisConnection(config.REDIS_URL));
    await redis.del(`${config.QUEUE_PREFIX}:quota:queued-audio-sec`, `${config.QUEUE_PREFIX}:quota:jobs`);
    await redis.quit();
    await app?.close();
  });

  /** A job with its transcript and job rows (queued). */
  async function jobWithRows(): Promise<string> {
    const jobId = randomUUID();
    const transcriptId = randomUUID();
    await repo.create(
      { id: transcriptId, sessionId: null, filename: 'a.wav', audioKey: `audio/${transcriptId}/a.wav`, mimeType: 'audio/wav', sizeBytes: 10, durationSec: 2, language: null, metadata: {} },
      { jobId, engine: 'pocketsphinx', engineParams: {}, callbackUrl: null, maxRetries: 2 },
    );
    return jobId;
  }

  it('returns the seconds of ended and row-less jobs older than STALE_RESERVATION_MS, keeps open and young ones', async () => {
    const key = 'abcd1234';
    const ended = await jobWithRows();
    const open = await jobWithRows();
    const ghost = randomUUID(); // no rows: deleted while it waited, or Redis lost the job
    const young = randomUUID(); // no rows yet: a submission still writing them
    await db.query('UPDATE transcript_jobs SET completed_at = now() WHERE job_id = $1', [ended]);

    const now = Date.now();
    jest.useFakeTimers(DATE_ONLY);
    jest.setSystemTime(now - 2 * STALE_RESERVATION_MS);
    await quota.reserve(key, ended, 30);
    await quota.reserve(key, open, 30);
    await quota.reserve(key, ghost, 20);
    jest.setSystemTime(now - STALE_RESERVATION_MS / 6);
    await quota.reserve(key, young, 15);
    jest.setSystemTime(now);
    expect(await quota.queuedSeconds(key)).toBe(95);

    // 95 + 40 is over 100: the ended job's and the ghost's 50 s come back first, then it fits.
    await quota.reserve(key, randomUUID(), 40);
    expect(await quota.queuedSeconds(key)).toBe(85);

    // Nothing stale is left (the open job, the young reservation, the new one): refused with the count.
    const refused = await quota.reserve(key, randomUUID(), 30).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QuotaError);
    expect((refused as QuotaError).toPublic()).toMatchObject({ code: 'QUEUED_AUDIO_QUOTA', queued_sec: 85 });
    expect(await quota.releaseStale(key)).toBe(0);

    // Once the open job ends without its give-back, it is stale too.
    await db.query('UPDATE transcript_jobs SET completed_at = now() WHERE job_id = $1', [open]);
    expect(await quota.releaseStale(key)).toBe(1);
    expect(await quota.queuedSeconds(key)).toBe(55);
    jest.useRealTimers();
  });
});
