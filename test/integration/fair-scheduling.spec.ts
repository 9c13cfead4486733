/**
 * Fair scheduling and the queued-audio quota against a real Redis: priorities from the tag script
 * decide the order in which BullMQ hands jobs to a worker; the quota's counter is shared and atomic.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { redisConnection } from '../../src/common/redis.js';
import { FairScheduler, parseKeyWeights, priorityOfTag } from '../../src/transcription/fair-scheduling.js';
import { QueuedAudioQuota, QuotaError } from '../../src/transcription/queued-audio-quota.js';
import { testConfig } from '../support/env.js';

interface Item { key: string; n: number }

/** Adds items of each key (in this order, `cost` seconds each) with the scheduler's priorities; returns the order a worker takes them in. */
async function runOrder(scheduler: FairScheduler, queue: Queue<Item>, batches: { key: string; costs: number[] }[]): Promise<string[]> {
  for (const { key, costs } of batches) {
    const priorities = await scheduler.priorities(queue, key, costs);
    await queue.addBulk(costs.map((_, n) => ({ name: 'piece', data: { key, n }, opts: priorities ? { priority: priorities[n] } : {} })));
  }
  const order: string[] = [];
  const total = batches.reduce((sum, b) => sum + b.costs.length, 0);
  await new Promise<void>((resolve, reject) => {
    const worker = new Worker<Item>(queue.name, (job: Job<Item>) => {
      order.push(`${job.data.key}${job.data.n}`);
      if (order.length === total) setImmediate(() => void worker.close().then(resolve, reject));
      return Promise.resolve();
    }, { connection: redisConnection(testConfig().REDIS_URL), prefix: queue.opts.prefix, concurrency: 1 });
  });
  return order;
}

describe('fair scheduling (BullMQ priorities, real Redis)', () => {
  const queues: Queue[] = [];
  const newQueue = () => {
    const config = testConfig();
    const queue = new Queue<Item>('lane', { connection: redisConnection(config.REDIS_URL), prefix: config.QUEUE_PREFIX });
    queues.push(queue);
    return queue;
  };
  afterAll(async () => {
    for (const q of queues) {
      await q.obliterate({ force: true });
      await q.close();
    }
  });

  it('parses KEY_WEIGHTS and maps tags to BullMQ priorities', () => {
    expect([...parseKeyWeights(' 3f2a9c1d=4, anonymous = 0.5 ')]).toEqual([['3f2a9c1d', 4], ['anonymous', 0.5]]);
    expect([...parseKeyWeights('')]).toEqual([]);
    expect(() => parseKeyWeights('alice=2')).toThrow("KEY_WEIGHTS: 'alice=2' is not <label>=<weight>");
    expect([0, 0.4, 1, 29.9, 1e9].map(priorityOfTag)).toEqual([1, 1, 2, 30, 2 ** 21 - 1]);
  });

  it('lets a key that arrives later take turns with the backlog of a key that came first, instead of waiting behind it', async () => {
    const order = await runOrder(new FairScheduler(testConfig()), newQueue(), [
      { key: 'a', costs: [10, 10, 10, 10, 10, 10] },
      { key: 'b', costs: [10, 10, 10] },
    ]);
    // Nothing ran before b arrived, so both start at virtual time 0: turns alternate, a first (it queued first).
    expect(order).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2', 'a3', 'a4', 'a5']);
  });

  it('is first in, first out with FAIR_SCHEDULING=false', async () => {
    const order = await runOrder(new FairScheduler(testConfig({ FAIR_SCHEDULING: 'false' })), newQueue(), [
      { key: 'a', costs: [10, 10, 10] },
      { key: 'b', costs: [10] },
    ]);
    expect(order).toEqual(['a0', 'a1', 'a2', 'b0']);
  });

  it('gives a key of weight 2 two turns for every turn of a key of weight 1, and charges by audio seconds', async () => {
    const weighted = await runOrder(new FairScheduler(testConfig({ KEY_WEIGHTS: 'bbbbbbbb=2' })), newQueue(), [
      { key: 'aaaaaaaa', costs: [10, 10, 10] },
      { key: 'bbbbbbbb', costs: [10, 10, 10, 10] },
    ]);
    expect(weighted).toEqual(['aaaaaaaa0', 'bbbbbbbb0', 'bbbbbbbb1', 'aaaaaaaa1', 'bbbbbbbb2', 'bbbbbbbb3', 'aaaaaaaa2']);
    // A key whose pieces are three times as long gets a third of the turns.
    const bySeconds = await runOrder(new FairScheduler(testConfig()), newQueue(), [
      { key: 'long', costs: [30, 30] },
      { key: 'short', costs: [10, 10, 10, 10] },
    ]);
    expect(bySeconds).toEqual(['long0', 'short0', 'short1', 'short2', 'long1', 'short3']);
  });

  it('starts a newcomer at the head of the line, not at virtual time 0, once work has run', async () => {
    const scheduler = new FairScheduler(testConfig());
    const queue = newQueue();
    const a = await scheduler.priorities(queue, 'a', [10, 10, 10, 10]);
    await queue.addBulk(a!.map((priority, n) => ({ name: 'piece', data: { key: 'a', n }, opts: { priority } })));
    // Two of a's pieces are taken (the head of the line is now a's third piece, tag 20).
    const first = await queue.getJobs(['prioritized'], 0, 1, true);
    for (const job of first) await job.remove();
    const b = await scheduler.priorities(queue, 'b', [10]);
    expect(a).toEqual([1, 11, 21, 31]);
    expect(b).toEqual([21]);
    // An idle lane starts again from 0.
    await queue.obliterate({ force: true });
    expect(await scheduler.priorities(queue, 'a', [10])).toEqual([1]);
  });
});

describe('queued-audio quota (real Redis)', () => {
  let quota: QueuedAudioQuota;
  let other: QueuedAudioQuota;
  let prefix: string;

  beforeAll(() => {
    const config = testConfig({ MAX_QUEUED_AUDIO_SECONDS_PER_KEY: '100' });
    prefix = config.QUEUE_PREFIX;
    quota = new QueuedAudioQuota(config);
    // A second instance on the same prefix: another API replica.
    other = new QueuedAudioQuota(config);
  });
  afterAll(async () => {
    const redis = new Redis(redisConnection(testConfig().REDIS_URL));
    await redis.del(`${prefix}:quota:queued-audio-sec`, `${prefix}:quota:jobs`);
    await redis.quit();
    await quota.onModuleDestroy();
    await other.onModuleDestroy();
  });

  it('counts each key over every replica, refuses what would go over with 429 and the numbers, and gives seconds back once per job', async () => {
    await quota.reserve('aaaaaaaa', 'job-1', 60);
    await other.reserve('aaaaaaaa', 'job-2', 30);
    await other.reserve('aaaaaaaa', 'job-2', 30); // the same job again counts once
    expect(await quota.queuedSeconds('aaaaaaaa')).toBe(90);

    const refused = await other.reserve('aaaaaaaa', 'job-3', 20).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QuotaError);
    expect((refused as QuotaError).status).toBe(429);
    expect((refused as QuotaError).toPublic()).toEqual({
      code: 'QUEUED_AUDIO_QUOTA',
      message: 'this API key already has 90.0 s of audio queued or running and this file adds 20.0 s, over the limit of 100 s per key (MAX_QUEUED_AUDIO_SECONDS_PER_KEY); retry after 30 s, once some of its jobs have finished',
      limit_sec: 100, queued_sec: 90, file_sec: 20, retry_after: 30,
    });
    // Another key has its own count.
    await other.reserve('bbbbbbbb', 'job-4', 100);

    await quota.release('job-1');
    await other.release('job-1'); // a second give-back (e.g. Failed after Cancelled) changes nothing
    expect(await quota.queuedSeconds('aaaaaaaa')).toBe(30);
    await other.reserve('aaaaaaaa', 'job-3', 20);
    expect(await quota.queuedSeconds('aaaaaaaa')).toBe(50);

    const tooLong = await quota.reserve('cccccccc', 'job-5', 101).catch((e: unknown) => e);
    expect((tooLong as QuotaError).status).toBe(413);
    expect((tooLong as QuotaError).code).toBe('AUDIO_LONGER_THAN_QUOTA');
  });

  it('keeps the count exact under concurrent reservations from two replicas', async () => {
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 ? quota : other).reserve('dddddddd', `c-${i}`, 15)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(6);
    expect(await quota.queuedSeconds('dddddddd')).toBe(90);
  });
});
