import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MinioStorageDriver } from '../../src/storage/minio-storage.driver.js';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';
import { startS3, uniqueBucket, type S3TestServer } from '../support/s3.js';

interface StatusEvent { status: string; progress: number; worker_id: string | null }
interface ResultView { job_id: string; transcript_id: string; status: string; filename: string; audio_url: string; text: string; duration: number }

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('STORAGE_DRIVER=minio end to end (against s3rver)', () => {
  let s3: S3TestServer;
  const gateways: TestGateway[] = [];
  const minioEnv = (bucket: string) => ({
    STORAGE_DRIVER: 'minio',
    MINIO_ENDPOINT: `http://${s3.endpoint}`,
    MINIO_ACCESS_KEY: s3.accessKey,
    MINIO_SECRET_KEY: s3.secretKey,
    MINIO_BUCKET_NAME: bucket,
  });
  /** A second client of the same bucket, to look at what the gateway stored. */
  const bucketView = (bucket: string) =>
    new MinioStorageDriver({ endpoint: s3.endpoint, useSSL: false, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket, region: 'us-east-1' });
  const boot = async (config: ReturnType<typeof testConfig>) => {
    const gw = await startGateway(config);
    gateways.push(gw);
    return gw;
  };

  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.close()));
    await s3?.close();
  });

  describe('one gateway (APP_ROLE=all)', () => {
    const bucket = uniqueBucket('e2e');
    let gw: TestGateway;
    beforeAll(async () => {
      gw = await boot(testConfig(minioEnv(bucket)));
    });

    it('creates its bucket at boot', async () => {
      await expect(bucketView(bucket).ping()).resolves.toBeUndefined();
    });

    it('stores the upload under audio/<transcript_id>/ and answers audio_url with a presigned URL to the exact bytes', async () => {
      const upload = fixture('goforward.wav');
      const submitted = await submit(gw.url, upload, {}, { contentType: 'audio/wav' });
      expect(submitted.status).toBe(202);
      const { job_id: jobId, transcript_id: transcriptId } = submitted.body as { job_id: string; transcript_id: string };
      const events = await followStream<StatusEvent>(`${gw.url}/api/transcribe/jobs/stream/${jobId}`);
      expect(events[events.length - 1]).toMatchObject({ status: 'completed', progress: 100 });

      expect(await bucketView(bucket).list('audio/')).toEqual([`audio/${transcriptId}/goforward.wav`]);
      // Nothing went to the local driver's directory.
      expect(readdirSync(gw.config.DATA_DIR)).toEqual([]);

      const result = await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${jobId}`);
      expect(result.status).toBe(200);
      expect(result.body.text.length).toBeGreaterThan(0);
      const url = new URL(result.body.audio_url);
      expect(url.origin).toBe(`http://${s3.endpoint}`);
      expect(url.pathname).toBe(`/${bucket}/audio/${transcriptId}/goforward.wav`);
      expect(url.searchParams.get('X-Amz-Expires')).toBe('3600');
      expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
      const audio = await fetch(url);
      expect(audio.status).toBe(200);
      expect(audio.headers.get('content-type')).toBe('audio/wav');
      expect(sha256(Buffer.from(await audio.arrayBuffer()))).toBe(sha256(readFileSync(upload)));
    });

    it('stores nothing for a rejected submission (a text file named .wav)', async () => {
      const textAsWav = path.join(scratchDir('bad'), 'notes.wav');
      writeFileSync(textAsWav, 'this is a text file pretending to be audio\n');
      const before = await bucketView(bucket).list('');
      const res = await submit(gw.url, textAsWav);
      expect(res.status).toBe(415);
      expect(res.body.code).toBe('AUDIO_UNREADABLE');
      expect(await bucketView(bucket).list('')).toEqual(before);
      expect(readdirSync(path.join(gw.config.TEMP_DIR, 'uploads'))).toEqual([]);
    });
  });

  it('runs api and worker with separate local disks: the worker reads the audio from the bucket', async () => {
    const bucket = uniqueBucket('roles');
    const shared = testConfig(minioEnv(bucket));
    const api = await boot(Object.assign(testConfig(), shared, { APP_ROLE: 'api', DATA_DIR: scratchDir('api-data'), TEMP_DIR: scratchDir('api-tmp') }));
    // The second boot finds the bucket the first one created.
    const worker = await boot(Object.assign(testConfig(), shared, { APP_ROLE: 'worker', DATA_DIR: scratchDir('worker-data'), TEMP_DIR: scratchDir('worker-tmp') }));
    expect(api.config.TEMP_DIR).not.toBe(worker.config.TEMP_DIR);

    const submitted = await submit(api.url, fixture('goforward.wav'));
    expect(submitted.status).toBe(202);
    const events = await followStream<StatusEvent>(`${api.url}/api/transcribe/jobs/stream/${submitted.body.job_id}`);
    expect(events.some((e) => e.status === 'processing')).toBe(true);
    expect(events[events.length - 1]).toMatchObject({ status: 'completed', progress: 100 });
    const result = await getJson<ResultView>(`${api.url}/api/transcribe/jobs/result/${submitted.body.job_id}`);
    expect(result.status).toBe(200);
    expect(result.body.text.length).toBeGreaterThan(0);
    expect(await bucketView(bucket).list('audio/')).toEqual([`audio/${submitted.body.transcript_id}/goforward.wav`]);
    for (const gw of [api, worker]) expect(readdirSync(gw.config.DATA_DIR)).toEqual([]);
  });
});
