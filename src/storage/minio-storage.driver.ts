import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client, S3Error, type BucketItem } from 'minio';
import { StorageNotFoundError, type StorageDriver, type StoragePutMeta, type StoredObjectInfo } from './storage.driver.js';

/**
 * Largest object one S3 PUT may carry (5 GiB, an S3 limit MinIO shares). Uploads are single PUTs
 * (see `put`), so MAX_FILE_SIZE must stay at or below this with the minio driver.
 */
export const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;

/** Seconds the internal presigned PUT URL stays valid; S3 checks expiry when the request starts, not when it ends. */
const PUT_URL_TTL_SEC = 15 * 60;

/** S3 error codes that mean "no such object": GET answers NoSuchKey, HEAD (no body) NotFound. */
const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NotFound']);

/** A parsed MINIO_ENDPOINT. */
export interface S3Endpoint {
  /** Host name or IP address (IPv6 without brackets), as the minio client's `endPoint` wants it. */
  host: string;
  /** TCP port; undefined lets the client pick 443 (TLS) or 80. */
  port: number | undefined;
  useSSL: boolean;
}

/**
 * Parses MINIO_ENDPOINT in either accepted form: `host[:port]` (TLS from `fallback.useSSL`) or
 * `http(s)://host[:port][/]` (TLS from the scheme). A port in the endpoint wins over `fallback.port`
 * (MINIO_PORT).
 *
 * @throws Error for anything else (a path, user info, another scheme): the minio client cannot
 *   address a bucket below a path prefix.
 */
export function parseS3Endpoint(endpoint: string, fallback: { port?: number; useSSL: boolean }): S3Endpoint {
  const raw = endpoint.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    const url = new URL(raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`S3 endpoint ${raw}: the scheme must be http or https`);
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.username) {
      throw new Error(`S3 endpoint ${raw}: give only scheme, host and port (no path, query or credentials)`);
    }
    return {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port ? Number(url.port) : fallback.port,
      useSSL: url.protocol === 'https:',
    };
  }
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/.exec(raw);
  if (!m) throw new Error(`S3 endpoint ${raw}: expected host, host:port or http(s)://host[:port]`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: m[2] ? Number(m[2]) : fallback.port, useSSL: fallback.useSSL };
}

/** Connection settings of the minio driver (from AppConfig's MINIO_* variables). */
export interface MinioStorageOptions {
  /** MINIO_ENDPOINT: where this process reaches the store (`host[:port]` or `http(s)://host[:port]`). */
  endpoint: string;
  /** MINIO_PORT, used when `endpoint` names no port. */
  port?: number;
  /** MINIO_USE_SSL, used when `endpoint` has no scheme. */
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  /** MINIO_BUCKET_NAME. */
  bucket: string;
  /** MINIO_REGION; set explicitly so that signing URLs never needs a request to the store. */
  region: string;
  /** MINIO_PUBLIC_ENDPOINT: the endpoint presigned GET URLs are signed for; defaults to `endpoint`. */
  publicEndpoint?: string;
  /** Milliseconds `ping()` and `ensureBucket()` wait for the store before failing (default 5000). */
  timeoutMs?: number;
  /** Milliseconds an upload may make no progress before it is aborted (default 60000). */
  idleTimeoutMs?: number;
  /** Directory where streams of unknown length are spooled before upload (default: the OS temp dir). */
  spoolDir?: string;
}

/**
 * StorageDriver on MinIO or any S3-compatible store, through the `minio` client: the only class
 * in the gateway that talks S3. API and workers on different machines share audio through it.
 *
 * Vendor errors are translated here: a missing object (S3 `NoSuchKey`/`NotFound`) becomes
 * StorageNotFoundError; every other failure becomes an Error naming the operation, the key and
 * the endpoint, with the S3 error as `cause`.
 */
export class MinioStorageDriver implements StorageDriver {
  readonly name = 'minio';
  /** The bucket audio is stored in. */
  readonly bucket: string;
  private readonly client: Client;
  /** Signs presigned GET URLs for the public endpoint; the same client when there is none. */
  private readonly signer: Client;
  private readonly endpointUrl: string;
  private readonly region: string;
  private readonly timeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly spoolDir: string;

  /** @throws Error when an endpoint cannot be parsed (AppConfig validation normally catches that first). */
  constructor(options: MinioStorageOptions) {
    this.bucket = options.bucket;
    this.region = options.region;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.spoolDir = options.spoolDir ?? os.tmpdir();
    const internal = parseS3Endpoint(options.endpoint, { port: options.port, useSSL: options.useSSL });
    this.endpointUrl = `${internal.useSSL ? 'https' : 'http'}://${internal.host.includes(':') ? `[${internal.host}]` : internal.host}${internal.port ? `:${internal.port}` : ''}`;
    const clientFor = (e: S3Endpoint) =>
      new Client({ endPoint: e.host, port: e.port, useSSL: e.useSSL, accessKey: options.accessKey, secretKey: options.secretKey, region: options.region });
    this.client = clientFor(internal);
    this.signer = options.publicEndpoint
      ? clientFor(parseS3Endpoint(options.publicEndpoint, { port: options.port, useSSL: options.useSSL }))
      : this.client;
  }

  /**
   * Creates the bucket when it does not exist (called once at boot by StorageModule, by API and
   * worker processes alike). Safe when several processes boot at once: losing the creation race
   * (`BucketAlreadyOwnedByYou`, or `BucketAlreadyExists` from servers that answer so for the own
   * account) counts as success once the bucket is confirmed reachable.
   *
   * @returns whether this call created the bucket.
   * @throws Error when the store is unreachable within `timeoutMs` or refuses (credentials, a
   *   bucket name owned by someone else).
   */
  async ensureBucket(): Promise<{ created: boolean }> {
    const exists = () => this.withTimeout(this.client.bucketExists(this.bucket), `checking bucket ${this.bucket}`);
    try {
      if (await exists()) return { created: false };
      await this.withTimeout(this.client.makeBucket(this.bucket, this.region), `creating bucket ${this.bucket}`);
      return { created: true };
    } catch (err) {
      const code = err instanceof S3Error ? err.code : undefined;
      if ((code === 'BucketAlreadyOwnedByYou' || code === 'BucketAlreadyExists') && (await exists().catch(() => false))) return { created: false };
      throw this.failure(`ensuring bucket ${this.bucket}`, err);
    }
  }

  /**
   * Streams `source` into `key` with one PUT, never holding more than a stream buffer in memory.
   *
   * The minio client's `putObject` reads bodies up to its part size (64 MiB) into memory to hash
   * them, and above that uses multipart uploads, which start by listing incomplete uploads (a call
   * s3rver does not implement). Instead the body goes through a presigned PUT URL, which S3 signs
   * with `UNSIGNED-PAYLOAD`, so it can be streamed unhashed with a Content-Length.
   *
   * Atomicity is S3's: S3 and MinIO create the object only once the whole declared Content-Length
   * has arrived, so a PUT whose connection is closed early leaves no object (and an existing one
   * intact). The driver's part is never to let the body reach its declared length unless the
   * source ended with exactly that length: on any failure the connection is destroyed mid-body.
   * (s3rver, used in tests, writes in place and does not give this guarantee.)
   *
   * A stream without `meta.size_bytes` is first spooled to a temp file to learn its length (S3
   * rejects PUTs without one); the gateway itself always passes a file path.
   *
   * @throws Error when the source fails, is shorter or longer than `meta.size_bytes`, the object
   *   is larger than MAX_SINGLE_PUT_BYTES, the upload stalls for `idleTimeoutMs`, or S3 refuses.
   */
  async put(key: string, source: Readable | string, meta: StoragePutMeta): Promise<{ size_bytes: number }> {
    if (typeof source === 'string') {
      const size = (await stat(source)).size;
      await this.upload(key, createReadStream(source), size, meta.contentType);
      return { size_bytes: size };
    }
    if (meta.size_bytes !== undefined) {
      await this.upload(key, source, meta.size_bytes, meta.contentType);
      return { size_bytes: meta.size_bytes };
    }
    await mkdir(this.spoolDir, { recursive: true });
    const dir = await mkdtemp(path.join(this.spoolDir, 'minio-spool-'));
    try {
      const file = path.join(dir, 'body');
      await pipeline(source, createWriteStream(file));
      return await this.put(key, file, { contentType: meta.contentType });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** @throws StorageNotFoundError when the object does not exist. */
  async readRange(key: string, start: number, end: number): Promise<Readable> {
    try {
      return await this.client.getPartialObject(this.bucket, key, start, end - start + 1);
    } catch (err) {
      throw this.translate('reading', key, err);
    }
  }

  async size(key: string): Promise<number> {
    try {
      return (await this.client.statObject(this.bucket, key)).size;
    } catch (err) {
      throw this.translate('reading', key, err);
    }
  }

  async read(key: string): Promise<Readable> {
    try {
      return await this.client.getObject(this.bucket, key);
    } catch (err) {
      throw this.translate('reading', key, err);
    }
  }

  /**
   * Streams the object into `destinationPath` (created or truncated); a failed download removes
   * the partial file.
   * @throws StorageNotFoundError when the object does not exist.
   */
  async download(key: string, destinationPath: string): Promise<void> {
    const body = await this.read(key);
    try {
      await pipeline(body, createWriteStream(destinationPath));
    } catch (err) {
      await rm(destinationPath, { force: true });
      throw this.translate('downloading', key, err);
    }
  }

  /** Deletes the object; S3 answers a delete of a missing key with success, so this is idempotent. */
  async delete(key: string): Promise<void> {
    try {
      await this.client.removeObject(this.bucket, key);
    } catch (err) {
      if (isNotFound(err)) return;
      throw this.failure(`deleting ${key}`, err);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.statObject(this.bucket, key);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.failure(`checking ${key}`, err);
    }
  }

  /** Keys under `prefix` (S3 ListObjectsV2, recursive, every page), sorted. */
  async list(prefix: string): Promise<string[]> {
    return (await this.listWithDates(prefix)).map((o) => o.key);
  }

  /** Objects under `prefix` with S3's LastModified (second precision) and size, sorted by key. */
  async listWithDates(prefix: string): Promise<StoredObjectInfo[]> {
    const items = await new Promise<BucketItem[]>((resolve, reject) => {
      const out: BucketItem[] = [];
      this.client
        .listObjectsV2(this.bucket, prefix, true)
        .on('data', (item: BucketItem) => out.push(item))
        .on('error', reject)
        .on('end', () => resolve(out));
    }).catch((err: unknown) => {
      throw this.failure(`listing ${prefix}*`, err);
    });
    return items
      .flatMap((i) => (i.name === undefined ? [] : [{ key: i.name, lastModified: i.lastModified, size_bytes: i.size }]))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * A presigned GET URL (AWS Signature V4, computed locally: no request to the store) valid for
   * `ttlSec` seconds (1 to 604800), for MINIO_PUBLIC_ENDPOINT when set. Does not check that the
   * object exists: a URL for a missing key answers 404, an expired one 403.
   */
  async presignedGetUrl(key: string, ttlSec: number): Promise<string | null> {
    return this.signer.presignedGetObject(this.bucket, key, ttlSec);
  }

  /**
   * Readiness: the bucket answers within `timeoutMs`.
   * @throws Error naming the endpoint and the cause when the store is unreachable, refuses the
   *   credentials or the bucket is missing.
   */
  async ping(): Promise<void> {
    let exists: boolean;
    try {
      exists = await this.withTimeout(this.client.bucketExists(this.bucket), `checking bucket ${this.bucket}`);
    } catch (err) {
      throw this.failure(`checking bucket ${this.bucket}`, err);
    }
    if (!exists) throw new Error(`S3 store at ${this.endpointUrl}: bucket ${this.bucket} does not exist`);
  }

  private async upload(key: string, body: Readable, size: number, contentType: string): Promise<void> {
    if (size > MAX_SINGLE_PUT_BYTES) {
      body.destroy();
      throw new Error(`storing ${key}: ${size} bytes exceed the ${MAX_SINGLE_PUT_BYTES} bytes one S3 PUT may carry; lower MAX_FILE_SIZE`);
    }
    try {
      const url = new URL(await this.client.presignedPutObject(this.bucket, key, PUT_URL_TTL_SEC));
      await this.streamPut(url, body, size, contentType);
    } catch (err) {
      body.destroy();
      throw this.failure(`storing ${key}`, err);
    }
  }

  /** One PUT of exactly `size` bytes from `body` to a presigned URL; resolves on a 2xx answer. */
  private streamPut(url: URL, body: Readable, size: number, contentType: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: unknown) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      const request = url.protocol === 'https:' ? https.request : http.request;
      const req = request(
        url,
        { method: 'PUT', headers: { 'Content-Length': String(size), 'Content-Type': contentType }, timeout: this.idleTimeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            if (chunks.length < 64) chunks.push(c);
          });
          res.on('error', settle);
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) settle();
            else settle(s3ErrorFromXml(status, Buffer.concat(chunks).toString('utf8')));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no progress for ${this.idleTimeoutMs} ms`)));
      pipeline(body, exactLength(size), req).catch(settle);
    });
  }

  private translate(action: string, key: string, err: unknown): Error {
    return isNotFound(err) ? new StorageNotFoundError(key) : this.failure(`${action} ${key}`, err);
  }

  private failure(action: string, err: unknown): Error {
    return new Error(`S3 store at ${this.endpointUrl} (bucket ${this.bucket}): ${action} failed: ${describe(err)}`, { cause: err });
  }

  /** The minio client's calls take no AbortSignal; an abandoned call settles on its own later. */
  private withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof StorageNotFoundError || (err instanceof S3Error && NOT_FOUND_CODES.has(err.code ?? ''));
}

function describe(err: unknown): string {
  if (err instanceof S3Error) return `${err.code ?? 'S3Error'}: ${err.message}`;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/**
 * Passes bytes through, failing when the stream turns out longer or shorter than `expected`.
 * The chunk that completes `expected` is held back until the source has ended: sent at once, the
 * server would hold a complete body and store it even if the source then turned out longer or
 * failed.
 */
function exactLength(expected: number): Transform {
  let seen = 0;
  let last: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > expected) callback(new Error(`the stream is longer than the declared ${expected} bytes`));
      else if (seen === expected) {
        last = chunk;
        callback();
      } else callback(null, chunk);
    },
    flush(callback) {
      if (seen !== expected) callback(new Error(`the stream ended after ${seen} of the declared ${expected} bytes`));
      else callback(null, last);
    },
  });
}

/** An S3Error from an S3 XML error body (`<Error><Code>…</Code><Message>…</Message></Error>`). */
function s3ErrorFromXml(status: number, xml: string): S3Error {
  const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
  const err = new S3Error(`${field('Message') ?? 'no message'} (HTTP ${status})`);
  err.code = field('Code') ?? `HTTP${status}`;
  return err;
}
