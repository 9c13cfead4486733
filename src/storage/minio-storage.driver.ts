import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client, S3Error, type BucketItem } from 'minio';
import { firstFailure } from './first-failure.js';
import { StorageError, StorageNotFoundError, storageUnavailable } from './storage.errors.js';
import type { StorageDriver, StoragePutMeta, StoredObjectInfo } from './storage.driver.js';

/**
 * Part size of multipart uploads, in bytes. The minio client holds one part in memory to hash it
 * (and sends objects up to this size as one PUT from memory), so this bounds the memory of an
 * upload; 2 GiB (the default MAX_FILE_SIZE) is 128 parts, far below S3's 10 000. S3's minimum is 5 MiB.
 */
export const UPLOAD_PART_BYTES = 16 * 1024 * 1024;

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
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: m[2] ? Number(m[2]) : fallback.port, useSSL: fallback.useSSL };
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
  /** Milliseconds an upload's connection may carry no traffic before it is aborted (default 60000). */
  idleTimeoutMs?: number;
  /** Directory where stream sources are spooled before upload (default: the OS temp dir). */
  spoolDir?: string;
  /** Multipart part size in bytes (default UPLOAD_PART_BYTES; at least 5 MiB). */
  partSizeBytes?: number;
}

/**
 * An agent whose sockets are destroyed after `idleMs` without traffic. The minio client takes
 * neither a timeout nor an AbortSignal, so this is what ends an upload to a store that stopped
 * reading. The agent's `timeout` option makes Node arm the socket timer, also again each time a
 * kept-alive socket is reused, but on its own only emits `timeout`; the listener added in
 * `createConnection` (the documented hook for custom agents) destroys the socket, which fails the
 * request.
 */
function idleTimeoutAgent(useSSL: boolean, idleMs: number): http.Agent {
  const options = { keepAlive: true, timeout: idleMs };
  const agent = useSSL ? new https.Agent(options) : new http.Agent(options);
  // eslint-disable-next-line @typescript-eslint/unbound-method -- bound on the next line
  const original: http.Agent['createConnection'] = agent.createConnection;
  const create = original.bind(agent);
  agent.createConnection = (connectOptions, callback) => {
    const socket = create(connectOptions, callback) as Socket | null | undefined;
    socket?.once('timeout', () => socket.destroy(new Error(`no traffic for ${idleMs} ms`)));
    return socket;
  };
  return agent;
}

/**
 * StorageDriver on MinIO or any S3-compatible store, through the `minio` client: the only class
 * in the gateway that talks S3. API and workers on different machines share audio through it.
 *
 * Vendor errors are translated here, by the minio client's own `S3Error.code`: a missing object
 * (`NoSuchKey`, `NotFound`) becomes StorageNotFoundError; any other failure of an object operation
 * becomes StorageError STORAGE_UNAVAILABLE, whose public message names no endpoint, bucket or key
 * (they are its private details, the S3 error its cause). `ping` and `ensureBucket`, which only
 * operators see (readiness, boot), fail with an Error naming the endpoint and the bucket.
 */
export class MinioStorageDriver implements StorageDriver {
  readonly name = 'minio';
  /** The bucket audio is stored in. */
  readonly bucket: string;
  private readonly client: Client;
  /** Uploads only: its connections are dropped after `idleTimeoutMs` without traffic. */
  private readonly uploader: Client;
  /** Signs presigned GET URLs for the public endpoint; the same client when there is none. */
  private readonly signer: Client;
  private readonly endpointUrl: string;
  private readonly region: string;
  private readonly timeoutMs: number;
  private readonly spoolDir: string;

  /** @throws Error when an endpoint cannot be parsed (AppConfig validation normally catches that first). */
  constructor(options: MinioStorageOptions) {
    this.bucket = options.bucket;
    this.region = options.region;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.spoolDir = options.spoolDir ?? os.tmpdir();
    const internal = parseS3Endpoint(options.endpoint, { port: options.port, useSSL: options.useSSL });
    this.endpointUrl = `${internal.useSSL ? 'https' : 'http'}://${internal.host.includes(':') ? `[${internal.host}]` : internal.host}${internal.port ? `:${internal.port}` : ''}`;
    const clientFor = (e: S3Endpoint, transportAgent?: http.Agent) =>
      new Client({
        endPoint: e.host,
        port: e.port,
        useSSL: e.useSSL,
        accessKey: options.accessKey,
        secretKey: options.secretKey,
        region: options.region,
        partSize: options.partSizeBytes ?? UPLOAD_PART_BYTES,
        ...(transportAgent ? { transportAgent } : {}),
      });
    this.client = clientFor(internal);
    this.uploader = clientFor(internal, idleTimeoutAgent(internal.useSSL, options.idleTimeoutMs ?? 60_000));
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
   * Stores `source` as `key` through the minio client's `putObject` (with the exact size and the
   * Content-Type): one PUT up to the part size, a multipart upload above it, so at most about one
   * part (UPLOAD_PART_BYTES) of the object is in memory at a time.
   *
   * A failed upload leaves no object: a single PUT is only sent once its whole body has been read,
   * and a multipart upload only becomes an object when it is completed after its last part.
   *
   * A stream source is first spooled to a temp file under `spoolDir` (removed afterwards), so that
   * its length is known and checked against `meta.size_bytes`, and a source that fails or lies
   * about its length never reaches the store. The gateway itself always passes a file path.
   *
   * @throws the source's own error when a stream source fails (nothing is stored)
   * @throws Error when a stream is shorter or longer than `meta.size_bytes` (nothing is stored)
   * @throws StorageError STORAGE_UNAVAILABLE when the store refuses, fails or stalls for `idleTimeoutMs`
   */
  async put(key: string, source: Readable | string, meta: StoragePutMeta): Promise<{ size_bytes: number }> {
    if (typeof source === 'string') return { size_bytes: await this.upload(key, source, meta.contentType) };
    await mkdir(this.spoolDir, { recursive: true });
    const dir = await mkdtemp(path.join(this.spoolDir, 'minio-spool-'));
    try {
      const file = path.join(dir, 'body');
      const check = meta.size_bytes === undefined ? undefined : exactLength(meta.size_bytes);
      const spool = createWriteStream(file);
      const failed = firstFailure({ source, check, spool });
      try {
        await pipeline([source, ...(check ? [check] : []), spool]);
      } catch (err) {
        // The source's failure and a wrong length are the caller's; only the spool file's are storage failures.
        if (failed() !== 'spool') throw err;
        throw storageUnavailable('storing', { driver: this.name, spool: file, key, error: describe(err) }, err);
      }
      return { size_bytes: await this.upload(key, file, meta.contentType) };
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
      throw this.translate('deleting', key, err);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.statObject(this.bucket, key);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.translate('checking', key, err);
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
      throw storageUnavailable('listing', { driver: this.name, endpoint: this.endpointUrl, bucket: this.bucket, prefix, error: describe(err) }, err);
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

  /** putObject of a local file, with its size and Content-Type. @returns the size in bytes. */
  private async upload(key: string, file: string, contentType: string): Promise<number> {
    const size = (await stat(file)).size;
    let body: ReadStream | undefined;
    try {
      body = createReadStream(file);
      await this.uploader.putObject(this.bucket, key, body, size, { 'Content-Type': contentType });
      return size;
    } catch (err) {
      throw this.translate('storing', key, err);
    } finally {
      // A failed multipart upload leaves the client's pipe from this stream paused, not closed.
      body?.destroy();
    }
  }

  /** StorageNotFoundError for S3's "no such object", StorageError STORAGE_UNAVAILABLE otherwise. */
  private translate(operation: string, key: string, err: unknown): StorageError {
    if (err instanceof StorageError) return err;
    if (isNotFound(err)) return new StorageNotFoundError(key, err);
    return storageUnavailable(operation, { driver: this.name, endpoint: this.endpointUrl, bucket: this.bucket, key, error: describe(err) }, err);
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

/** Passes bytes through, failing when the stream turns out longer or shorter than `expected` bytes. */
function exactLength(expected: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > expected) callback(new Error(`the stream is longer than the declared ${expected} bytes`));
      else callback(null, chunk);
    },
    flush(callback) {
      callback(seen === expected ? null : new Error(`the stream ended after ${seen} of the declared ${expected} bytes`));
    },
  });
}
