import { Logger } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { AppConfig, parseEnv } from '../../src/config/app-config.js';
import { ConfigModule } from '../../src/config/config.module.js';
import { LocalStorageDriver } from '../../src/storage/local-storage.driver.js';
import { GatewayError } from '../../src/common/gateway-error.js';
import { MinioStorageDriver, parseS3Endpoint } from '../../src/storage/minio-storage.driver.js';
import { AudioRetentionService } from '../../src/storage/retention.js';
import { STORAGE_DRIVER, StorageError, StorageNotFoundError, type StorageDriver } from '../../src/storage/storage.driver.js';
import { StorageModule } from '../../src/storage/storage.module.js';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { startS3, uniqueBucket, type S3TestServer } from '../support/s3.js';

const MiB = 1024 * 1024;
const JFK = fixture('jfk.wav');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A stream that sends `chunks` chunks of 64 KiB and then fails, as a client that disconnects mid-upload. */
function failingStream(chunks = 16): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent++ < chunks) this.push(Buffer.alloc(64 * 1024, sent));
      else this.destroy(new Error('the client went away'));
    },
  });
}

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** A TCP server that accepts connections and never answers: a store that hangs. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** One request that went through the S3 shim. */
interface ShimmedRequest {
  method: string;
  /** Path and query, e.g. `/bucket/key?partNumber=1&uploadId=…`. */
  url: string;
  /** Bytes of the request body that reached the shim. */
  bodyBytes: number;
}

/**
 * An HTTP proxy in front of s3rver that records every request, and answers the one S3 call of
 * the minio client's multipart upload that s3rver does not implement — ListMultipartUploads
 * (`GET /<bucket>?uploads`, asked to resume an earlier upload) — with an empty list, as a store
 * without incomplete uploads does. Everything else (initiate, upload part, complete) is s3rver's.
 */
async function s3Shim(targetPort: number): Promise<{ port: number; requests: ShimmedRequest[]; close: () => Promise<void> }> {
  const requests: ShimmedRequest[] = [];
  const server = http.createServer((req, res) => {
    const seen: ShimmedRequest = { method: req.method!, url: req.url!, bodyBytes: 0 };
    requests.push(seen);
    req.on('data', (c: Buffer) => (seen.bodyBytes += c.length));
    const url = new URL(req.url!, 'http://shim');
    if (req.method === 'GET' && url.searchParams.has('uploads')) {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${url.pathname.slice(1)}</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`);
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

let s3: S3TestServer;
let bucket: string;
const minioDriver = (overrides: Partial<ConstructorParameters<typeof MinioStorageDriver>[0]> = {}) =>
  new MinioStorageDriver({
    endpoint: s3.endpoint,
    useSSL: false,
    accessKey: s3.accessKey,
    secretKey: s3.secretKey,
    bucket,
    region: 'us-east-1',
    timeoutMs: 2000,
    spoolDir: scratchDir('spool'),
    ...overrides,
  });

beforeAll(async () => {
  if (process.env.LOG_LEVEL === 'silent') Logger.overrideLogger(false);
  s3 = await startS3();
  bucket = uniqueBucket('contract');
});
afterAll(async () => {
  await s3?.close();
});

describe('parseS3Endpoint: MINIO_ENDPOINT as host:port or URL', () => {
  it.each([
    ['minio:9000', { useSSL: false }, { host: 'minio', port: 9000, useSSL: false }],
    ['minio', { useSSL: true, port: 9443 }, { host: 'minio', port: 9443, useSSL: true }],
    ['s3.example.com', { useSSL: true }, { host: 's3.example.com', port: undefined, useSSL: true }],
    ['http://127.0.0.1:9000', { useSSL: true }, { host: '127.0.0.1', port: 9000, useSSL: false }],
    ['https://minio.example.com/', { useSSL: false }, { host: 'minio.example.com', port: undefined, useSSL: true }],
    ['https://minio.example.com:9000', { useSSL: false, port: 1234 }, { host: 'minio.example.com', port: 9000, useSSL: true }],
    ['[::1]:9000', { useSSL: false }, { host: '::1', port: 9000, useSSL: false }],
  ])('%s with %j', (endpoint, fallback, expected) => {
    expect(parseS3Endpoint(endpoint, fallback)).toEqual(expected);
  });

  it.each(['ftp://minio:21', 'http://minio:9000/prefix', 'http://user:pw@minio:9000', 'minio:9000/path', 'minio:port'])('rejects %s', (endpoint) => {
    expect(() => parseS3Endpoint(endpoint, { useSSL: false })).toThrow(/S3 endpoint/);
  });
});

describe('AppConfig storage variables', () => {
  it('defaults to the local driver and needs no MinIO settings for it', () => {
    const { value, problems } = parseEnv(AppConfig, {});
    expect(problems).toEqual([]);
    expect(value).toMatchObject({ STORAGE_DRIVER: 'local', MINIO_BUCKET_NAME: 'transcriptions', MINIO_USE_SSL: false, MINIO_REGION: 'us-east-1', AUDIO_RETENTION_HOURS: 24, PRESIGNED_URL_TTL: 3600 });
  });

  it('requires the keys for the minio driver and lists every bad variable at once', () => {
    const { problems } = parseEnv(AppConfig, { STORAGE_DRIVER: 'minio', MINIO_ENDPOINT: 'ftp://minio', MINIO_USE_SSL: 'maybe', MINIO_BUCKET_NAME: 'Audio_Files', PRESIGNED_URL_TTL: '0', AUDIO_RETENTION_HOURS: '-1' });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^MINIO_ENDPOINT must be host, host:port or http\(s\):\/\/host\[:port\]/),
        expect.stringMatching(/^MINIO_USE_SSL must be true or false/),
        expect.stringMatching(/^MINIO_ACCESS_KEY is required when STORAGE_DRIVER=minio/),
        expect.stringMatching(/^MINIO_SECRET_KEY is required when STORAGE_DRIVER=minio/),
        expect.stringMatching(/^MINIO_BUCKET_NAME must be a valid S3 bucket name/),
        expect.stringMatching(/^PRESIGNED_URL_TTL must not be less than 1/),
        expect.stringMatching(/^AUDIO_RETENTION_HOURS must not be less than 0/),
      ]),
    );
    expect(parseEnv(AppConfig, { STORAGE_DRIVER: 's3' }).problems).toEqual([expect.stringMatching(/^STORAGE_DRIVER must be one of the following values: local, minio/)]);
  });

  it('parses a complete minio setup', () => {
    const { value, problems } = parseEnv(AppConfig, {
      STORAGE_DRIVER: 'minio',
      MINIO_ENDPOINT: 'minio:9000',
      MINIO_ACCESS_KEY: 'gateway',
      MINIO_SECRET_KEY: 'secret',
      MINIO_USE_SSL: 'TRUE',
      MINIO_PORT: '9443',
      MINIO_PUBLIC_ENDPOINT: 'https://s3.example.com',
      AUDIO_RETENTION_HOURS: '0',
    });
    expect(problems).toEqual([]);
    expect(value).toMatchObject({ MINIO_USE_SSL: true, MINIO_PORT: 9443, MINIO_PUBLIC_ENDPOINT: 'https://s3.example.com', AUDIO_RETENTION_HOURS: 0 });
  });
});

/** The same behaviour, asserted against both drivers. */
const drivers: [string, () => Promise<StorageDriver>][] = [
  ['local', async () => new LocalStorageDriver(scratchDir('local-storage'))],
  [
    'minio',
    async () => {
      const d = minioDriver();
      await d.ensureBucket();
      return d;
    },
  ],
];

describe.each(drivers)('StorageDriver contract: %s', (_name, make) => {
  let storage: StorageDriver;
  const jfk = readFileSync(JFK);
  beforeAll(async () => {
    storage = await make();
  });

  it('stores a file path and reads and downloads it back byte for byte', async () => {
    const key = 'roundtrip/t1/jfk.wav';
    expect(await storage.put(key, JFK, { contentType: 'audio/wav' })).toEqual({ size_bytes: jfk.length });
    expect(await storage.exists(key)).toBe(true);
    expect(sha256(await collect(await storage.read(key)))).toBe(sha256(jfk));
    const dest = path.join(scratchDir('download'), 'jfk.wav');
    await storage.download(key, dest);
    expect(sha256(await readFile(dest))).toBe(sha256(jfk));
  });

  it('reports the size and reads byte ranges (inclusive, like HTTP Range)', async () => {
    const key = 'range/t1/jfk.wav';
    await storage.put(key, JFK, { contentType: 'audio/wav' });
    expect(await storage.size(key)).toBe(jfk.length);
    expect((await collect(await storage.readRange(key, 44, 1043))).equals(jfk.subarray(44, 1044))).toBe(true);
    await expect(storage.size('range/missing.wav')).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(storage.readRange('range/missing.wav', 0, 9)).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('stores a stream with and without a declared length, and a key with a space', async () => {
    const declared = await storage.put('stream/t2/with size.wav', Readable.from([jfk.subarray(0, 1000), jfk.subarray(1000)]), {
      contentType: 'audio/wav',
      size_bytes: jfk.length,
    });
    const undeclared = await storage.put('stream/t2/without-size.wav', Readable.from([jfk]), { contentType: 'audio/wav' });
    expect(declared.size_bytes).toBe(jfk.length);
    expect(undeclared.size_bytes).toBe(jfk.length);
    expect(sha256(await collect(await storage.read('stream/t2/with size.wav')))).toBe(sha256(jfk));
    expect(sha256(await collect(await storage.read('stream/t2/without-size.wav')))).toBe(sha256(jfk));
  });

  it('answers StorageNotFoundError for a missing key on read and download, and leaves no file behind', async () => {
    await expect(storage.read('missing/nothing.wav')).rejects.toBeInstanceOf(StorageNotFoundError);
    const dest = path.join(scratchDir('download'), 'nothing.wav');
    const err = await storage.download('missing/nothing.wav', dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageNotFoundError);
    expect((err as StorageNotFoundError).key).toBe('missing/nothing.wav');
    expect(existsSync(dest)).toBe(false);
    expect(await storage.exists('missing/nothing.wav')).toBe(false);
  });

  it('deletes idempotently', async () => {
    await storage.put('delete/t3/a.wav', JFK, { contentType: 'audio/wav' });
    await storage.delete('delete/t3/a.wav');
    expect(await storage.exists('delete/t3/a.wav')).toBe(false);
    await expect(storage.delete('delete/t3/a.wav')).resolves.toBeUndefined();
    await expect(storage.delete('delete/never/stored.wav')).resolves.toBeUndefined();
    await expect(storage.read('delete/t3/a.wav')).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('lists keys by prefix, sorted, with dates and sizes', async () => {
    const before = Date.now();
    await storage.put('list/b/2.wav', Readable.from([Buffer.from('22')]), { contentType: 'audio/wav' });
    await storage.put('list/a/1.wav', Readable.from([Buffer.from('1')]), { contentType: 'audio/wav' });
    await storage.put('listed-elsewhere/c.wav', Readable.from([Buffer.from('333')]), { contentType: 'audio/wav' });
    const after = Date.now();
    expect(await storage.list('list/')).toEqual(['list/a/1.wav', 'list/b/2.wav']);
    expect(await storage.list('list/a/')).toEqual(['list/a/1.wav']);
    expect(await storage.list('nothing-here/')).toEqual([]);
    expect(await storage.list('list')).toEqual(['list/a/1.wav', 'list/b/2.wav', 'listed-elsewhere/c.wav']);
    const dated = await storage.listWithDates('list/');
    expect(dated.map(({ key, size_bytes }) => ({ key, size_bytes }))).toEqual([
      { key: 'list/a/1.wav', size_bytes: 1 },
      { key: 'list/b/2.wav', size_bytes: 2 },
    ]);
    for (const o of dated) {
      // S3 LastModified has whole-second precision.
      expect(o.lastModified.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
      expect(o.lastModified.getTime()).toBeLessThanOrEqual(after + 1000);
    }
  });

  it('rejects with the source error when a stream fails mid-upload', async () => {
    await expect(storage.put('failed/t4/declared.wav', failingStream(), { contentType: 'audio/wav', size_bytes: 4 * MiB })).rejects.toThrow(/the client went away/);
  });

  it('leaves no object when a stream of unknown length fails', async () => {
    await expect(storage.put('failed/t4/undeclared.wav', failingStream(), { contentType: 'audio/wav' })).rejects.toThrow(/the client went away/);
    expect(await storage.exists('failed/t4/undeclared.wav')).toBe(false);
    expect(await storage.list('failed/t4/undeclared')).toEqual([]);
  });

  it('pings while the store is up', async () => {
    await expect(storage.ping()).resolves.toBeUndefined();
  });

  describe('audio retention on this driver', () => {
    it('deletes the given keys, reports the ones that failed, and keeps going', async () => {
      for (const t of ['r1', 'r2', 'r3']) await storage.put(`retention/${t}/a.wav`, JFK, { contentType: 'audio/wav' });
      // A real driver whose delete fails for one key: the store refusing a single deletion.
      const refusing: StorageDriver = Object.assign(Object.create(storage) as StorageDriver, {
        delete: (key: string) => (key.includes('r2') ? Promise.reject(new Error('AccessDenied')) : storage.delete(key)),
      });
      const retention = new AudioRetentionService(refusing, testConfig());
      const result = await retention.deleteAudio(['retention/r1/a.wav', 'retention/r2/a.wav', 'retention/r3/a.wav', 'retention/gone/a.wav']);
      expect(result).toEqual({ deleted: 3, failed: ['retention/r2/a.wav'] });
      expect(await storage.list('retention/')).toEqual(['retention/r2/a.wav']);
      expect(await new AudioRetentionService(storage, testConfig()).deleteAudio([])).toEqual({ deleted: 0, failed: [] });
    });

    it('finds objects no transcript refers to that are older than the cutoff', async () => {
      for (const t of ['o1', 'o2', 'o3']) await storage.put(`orphans/${t}/a.wav`, JFK, { contentType: 'audio/wav' });
      const retention = new AudioRetentionService(storage, testConfig());
      const known = new Set(['orphans/o2/a.wav']);
      expect(await retention.findOrphans(known, new Date(Date.now() + 5000), 'orphans/')).toEqual(['orphans/o1/a.wav', 'orphans/o3/a.wav']);
      // Objects newer than the cutoff may belong to a submission whose rows are not committed yet.
      expect(await retention.findOrphans(known, new Date(Date.now() - 60_000), 'orphans/')).toEqual([]);
    });
  });
});

describe('AudioRetentionService.cutoff', () => {
  const storage = new LocalStorageDriver(scratchDir('cutoff'));
  it('is AUDIO_RETENTION_HOURS before now, or null (keep forever) for 0', () => {
    const now = new Date('2026-03-01T12:00:00Z');
    expect(new AudioRetentionService(storage, testConfig()).cutoff(now)).toEqual(new Date('2026-02-28T12:00:00Z'));
    expect(new AudioRetentionService(storage, testConfig({ AUDIO_RETENTION_HOURS: '2' })).cutoff(now)).toEqual(new Date('2026-03-01T10:00:00Z'));
    expect(new AudioRetentionService(storage, testConfig({ AUDIO_RETENTION_HOURS: '0' })).cutoff(now)).toBeNull();
  });
});

describe('LocalStorageDriver specifics', () => {
  it('signs no URLs (the API serves the audio itself)', async () => {
    expect(await new LocalStorageDriver(scratchDir('local')).presignedGetUrl()).toBeNull();
  });

  it('leaves no object, and no temp file, when a stream of declared length fails mid-upload', async () => {
    const root = scratchDir('local');
    const storage = new LocalStorageDriver(root);
    await expect(storage.put('failed/t4/declared.wav', failingStream(), { contentType: 'audio/wav', size_bytes: 4 * MiB })).rejects.toThrow(/the client went away/);
    expect(await storage.exists('failed/t4/declared.wav')).toBe(false);
    expect(readdirSync(root, { recursive: true }).filter((f) => String(f).endsWith('.part'))).toEqual([]);
  });
});

describe('MinioStorageDriver against s3rver', () => {
  let storage: MinioStorageDriver;
  beforeAll(async () => {
    storage = minioDriver();
    await storage.ensureBucket();
  });

  it('creates a missing bucket once; concurrent and later calls find it', async () => {
    const fresh = uniqueBucket('ensure');
    const a = minioDriver({ bucket: fresh });
    await expect(a.ping()).rejects.toThrow(new RegExp(`bucket ${fresh} does not exist`));
    const results = await Promise.all([a.ensureBucket(), minioDriver({ bucket: fresh }).ensureBucket()]);
    expect(results.some((r) => r.created)).toBe(true);
    await expect(a.ping()).resolves.toBeUndefined();
    expect(await a.ensureBucket()).toEqual({ created: false });
  });

  it("uploads through the minio client's putObject: one PUT up to the part size, a multipart upload above it", async () => {
    const shim = await s3Shim(s3.port);
    try {
      const viaShim = minioDriver({ endpoint: `127.0.0.1:${shim.port}`, partSizeBytes: 5 * MiB });
      const small = path.join(scratchDir('parts'), 'small.wav');
      writeFileSync(small, Buffer.alloc(1 * MiB, 3));
      expect(await viaShim.put('parts/t5/small.wav', small, { contentType: 'audio/wav' })).toEqual({ size_bytes: MiB });
      expect(shim.requests.filter((r) => r.url.startsWith(`/${bucket}/parts/t5/small.wav`)).map((r) => [r.method, r.bodyBytes])).toEqual([['PUT', MiB]]);

      const size = 12 * MiB + 123;
      const big = Buffer.alloc(size);
      for (let i = 0; i < size; i += 4096) big.writeUInt32LE(i, i);
      const file = path.join(scratchDir('parts'), 'big.wav');
      writeFileSync(file, big);
      shim.requests.length = 0;
      expect(await viaShim.put('parts/t5/big.wav', file, { contentType: 'audio/wav' })).toEqual({ size_bytes: size });
      const parts = shim.requests.filter((r) => r.method === 'PUT' && /[?&]partNumber=/.test(r.url));
      // At most one part of 5 MiB is sent (and held in memory) at a time.
      expect(parts.map((p) => p.bodyBytes)).toEqual([5 * MiB, 5 * MiB, 2 * MiB + 123]);
      expect(shim.requests.some((r) => r.method === 'POST' && r.url.includes('?uploads'))).toBe(true);
      expect(shim.requests.some((r) => r.method === 'POST' && r.url.includes('?uploadId='))).toBe(true);

      const stored = await collect(await storage.read('parts/t5/big.wav'));
      expect(sha256(stored)).toBe(sha256(big));
      const res = await fetch((await storage.presignedGetUrl('parts/t5/big.wav', 60))!);
      expect(res.headers.get('content-type')).toBe('audio/wav');
      await res.body?.cancel();
    } finally {
      await shim.close();
    }
  });

  // A stream source is spooled and checked before the client sees it, so a failing source or a
  // wrong declared length never reaches the store: no request for the key, no object.
  it.each<[string, () => Readable, number | undefined, RegExp]>([
    ['fails mid-upload', () => failingStream(16), 4 * MiB, /the client went away/],
    ['fails right after reaching its declared length', () => failingStream(4), 4 * 64 * 1024, /the client went away/],
    ['is shorter than declared', () => Readable.from([Buffer.alloc(100)]), 200, /ended after 100 of the declared 200 bytes/],
    ['is longer than declared', () => Readable.from([Buffer.alloc(150), Buffer.alloc(60)]), 200, /longer than the declared 200 bytes/],
  ])('sends nothing to the store when a stream source %s', async (_what, source, declared, error) => {
    const shim = await s3Shim(s3.port);
    const key = `cut/${Math.random().toString(36).slice(2)}.wav`;
    try {
      const err = await minioDriver({ endpoint: `127.0.0.1:${shim.port}` })
        .put(key, source(), { contentType: 'audio/wav', ...(declared === undefined ? {} : { size_bytes: declared }) })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(error);
      // The caller's stream failed, not the store: not a storage error.
      expect(err).not.toBeInstanceOf(StorageError);
      expect(shim.requests.filter((r) => r.url.includes(key))).toEqual([]);
      expect(await storage.exists(key)).toBe(false);
    } finally {
      await shim.close();
    }
  });

  it("translates the store's refusal by the client's S3 error code into StorageError, the endpoint kept private", async () => {
    const refused = minioDriver({ accessKey: 'NOT-S3RVER' });
    const err = (await refused.put('denied/t6/jfk.wav', JFK, { contentType: 'audio/wav' }).catch((e: unknown) => e)) as StorageError;
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE', status: 503, retryable: true });
    expect(err.toPublic()).toEqual({ code: 'STORAGE_UNAVAILABLE', message: 'the audio store failed while storing the audio; try again later' });
    expect(err.details).toMatchObject({ driver: 'minio', endpoint: `http://${s3.endpoint}`, bucket, key: 'denied/t6/jfk.wav', error: expect.stringMatching(/^(AccessDenied|InvalidAccessKeyId)/) });
    const missing = (await storage.read('denied/t6/never.wav').catch((e: unknown) => e)) as StorageNotFoundError;
    expect(missing).toMatchObject({ code: 'STORAGE_OBJECT_NOT_FOUND', status: 410, retryable: false, key: 'denied/t6/never.wav' });
    expect(JSON.stringify(missing.toPublic())).not.toContain('never.wav');
  });

  it('aborts an upload to a store that stops answering after idleTimeoutMs', async () => {
    const silent = await silentServer();
    try {
      const started = Date.now();
      const err = await minioDriver({ endpoint: `127.0.0.1:${silent.port}`, idleTimeoutMs: 300 })
        .put('stalled/t7/jfk.wav', JFK, { contentType: 'audio/wav' })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE', details: expect.objectContaining({ error: expect.stringContaining('no traffic for 300 ms') }) });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await silent.close();
    }
  });

  it('spools a stream of unknown length in the spool directory and removes the spool file afterwards', async () => {
    const spoolDir = scratchDir('spool');
    const d = minioDriver({ spoolDir });
    await d.put('spooled/t8/jfk.wav', Readable.from([readFileSync(JFK)]), { contentType: 'audio/wav' });
    expect(readdirSync(spoolDir)).toEqual([]);
    await expect(d.put('spooled/t8/failed.wav', failingStream(), { contentType: 'audio/wav' })).rejects.toThrow(/the client went away/);
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  it('hands out presigned GET URLs that fetch the bytes with their content type, 404 for a missing key', async () => {
    await storage.put('presigned/t9/jfk.wav', JFK, { contentType: 'audio/wav' });
    const url = await storage.presignedGetUrl('presigned/t9/jfk.wav', 60);
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${s3.port}/${bucket}/presigned/t9/jfk\\.wav\\?.*X-Amz-Expires=60`));
    const res = await fetch(url!);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/wav');
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(readFileSync(JFK)));
    expect((await fetch((await storage.presignedGetUrl('presigned/t9/missing.wav', 60))!)).status).toBe(404);
  });

  it('answers 403 once a presigned URL has expired', async () => {
    await storage.put('presigned/t10/jfk.wav', JFK, { contentType: 'audio/wav' });
    const url = await storage.presignedGetUrl('presigned/t10/jfk.wav', 1);
    await sleep(2100);
    const res = await fetch(url!);
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/Request has expired/);
  });

  it('signs presigned URLs for MINIO_PUBLIC_ENDPOINT when set', async () => {
    const d = minioDriver({ publicEndpoint: `http://localhost:${s3.port}` });
    await d.put('presigned/t11/jfk.wav', JFK, { contentType: 'audio/wav' });
    const url = (await d.presignedGetUrl('presigned/t11/jfk.wav', 60))!;
    expect(new URL(url).host).toBe(`localhost:${s3.port}`);
    expect((await fetch(url)).status).toBe(200);
  });

  it('fails ping clearly when the store is down, hangs, or refuses the credentials', async () => {
    const port = await closedPort();
    await expect(minioDriver({ endpoint: `127.0.0.1:${port}` }).ping()).rejects.toThrow(
      new RegExp(`S3 store at http://127\\.0\\.0\\.1:${port} \\(bucket ${bucket}\\): checking bucket ${bucket} failed: .*ECONNREFUSED`),
    );
    const silent = await silentServer();
    try {
      await expect(minioDriver({ endpoint: `http://127.0.0.1:${silent.port}`, timeoutMs: 300 }).ping()).rejects.toThrow(/no answer within 300 ms/);
    } finally {
      await silent.close();
    }
    await expect(minioDriver({ accessKey: 'NOT-S3RVER' }).ping()).rejects.toThrow(/failed: AccessDenied/);
  });
});

describe('StorageModule boot', () => {
  const modules: TestingModule[] = [];
  afterEach(async () => {
    await Promise.all(modules.splice(0).map((m) => m.close()));
  });
  const boot = async (overrides: Record<string, string>) => {
    const m = await Test.createTestingModule({ imports: [ConfigModule.forRoot(testConfig(overrides)), StorageModule] }).compile();
    modules.push(m);
    await m.init();
    return m.get<StorageDriver>(STORAGE_DRIVER);
  };
  const minioEnv = (b: string) => ({ STORAGE_DRIVER: 'minio', MINIO_ENDPOINT: `http://${s3.endpoint}`, MINIO_ACCESS_KEY: s3.accessKey, MINIO_SECRET_KEY: s3.secretKey, MINIO_BUCKET_NAME: b });

  it('uses the local driver by default', async () => {
    expect((await boot({})).name).toBe('local');
  });

  it('creates the bucket at boot when it is missing; a second boot keeps its objects', async () => {
    const b = uniqueBucket('boot');
    await expect(minioDriver({ bucket: b }).ping()).rejects.toThrow(/does not exist/);
    const first = await boot(minioEnv(b));
    expect(first.name).toBe('minio');
    await expect(minioDriver({ bucket: b }).ping()).resolves.toBeUndefined();
    await first.put('audio/boot/jfk.wav', JFK, { contentType: 'audio/wav' });
    const second = await boot(minioEnv(b));
    expect(await second.list('audio/')).toEqual(['audio/boot/jfk.wav']);
  });

  it('fails the boot with the endpoint and the cause when the store is unreachable', async () => {
    const port = await closedPort();
    await expect(boot({ ...minioEnv(uniqueBucket('down')), MINIO_ENDPOINT: `127.0.0.1:${port}` })).rejects.toThrow(
      new RegExp(`S3 store at http://127\\.0\\.0\\.1:${port} .*ensuring bucket .* failed: .*ECONNREFUSED`),
    );
  });
});
