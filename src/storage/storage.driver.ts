import type { Readable } from 'node:stream';

/** Raised by drivers for keys that do not exist (vendor errors such as S3 NoSuchKey are translated to this). */
export class StorageNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`storage object not found: ${key}`);
    this.name = 'StorageNotFoundError';
  }
}

/**
 * Where uploaded audio lives between submission and transcription (and after, until retention
 * deletes it). Keys are `/`-separated relative paths such as `audio/<transcript id>/<file>`.
 * API and worker processes share a driver, so a worker on another machine reads what the API stored.
 */
export interface StorageDriver {
  /** `local` or `minio`. */
  readonly name: string;
  /**
   * Streams `source` (a readable stream or a local file path) into the object `key`.
   * Never buffers the whole object in memory; a failed write leaves no partial object.
   * @returns the stored size in bytes.
   */
  put(key: string, source: Readable | string, meta: { contentType: string }): Promise<{ size_bytes: number }>;
  /** @throws StorageNotFoundError */
  read(key: string): Promise<Readable>;
  /** Copies the object to a local file (workers decode from local disk). @throws StorageNotFoundError */
  download(key: string, destinationPath: string): Promise<void>;
  /** Deletes the object; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Lists keys under a prefix (used by retention and by tests counting orphans). */
  list(prefix: string): Promise<string[]>;
  /**
   * A URL a client can GET the object from for `ttlSec` seconds, or null when the driver cannot
   * sign URLs (local): the API then serves the audio through its own endpoint.
   */
  presignedGetUrl(key: string, ttlSec: number): Promise<string | null>;
  /** Throws when the backing store is unreachable (readiness checks). */
  ping(): Promise<void>;
}

/** DI token of the configured StorageDriver. */
export const STORAGE_DRIVER = Symbol('STORAGE_DRIVER');
