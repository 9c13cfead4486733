import type { Readable } from 'node:stream';

export { StorageError, StorageNotFoundError, type StorageErrorCode } from './storage.errors.js';

/** What a driver is told about an object it stores. */
export interface StoragePutMeta {
  /** MIME type stored with the object and sent back on GET (e.g. `audio/wav`). */
  contentType: string;
  /**
   * Exact length of a stream source in bytes, when the caller knows it: a stream that turns out
   * longer or shorter is refused and nothing is stored. For file-path sources it is only used
   * as the size a moved file (`move`) has; otherwise their size is read from the file.
   */
  size_bytes?: number;
  /**
   * For a file-path source: the caller is done with the file, so the driver may take it instead
   * of copying it. The local driver renames it into place (a copy, then removal, across file
   * systems); object stores upload it as usual and leave it. The caller still removes whatever
   * is left at the path afterwards, unless put answered `moved: true` (then nothing is left).
   */
  move?: boolean;
}

/** One stored object as listed by `listWithDates`. */
export interface StoredObjectInfo {
  key: string;
  /** When the object was last written (S3 LastModified, or the file's mtime). */
  lastModified: Date;
  size_bytes: number;
}

/**
 * Where uploaded audio lives between submission and transcription (and after, until retention
 * deletes it). Keys are `/`-separated relative paths such as `audio/<transcript id>/<file>`.
 * API and worker processes share a driver, so a worker on another machine reads what the API stored.
 *
 * Errors of object operations (src/storage/storage.errors.ts, GatewayErrors): StorageNotFoundError
 * (STORAGE_OBJECT_NOT_FOUND, 410) for a missing key, StorageError STORAGE_UNAVAILABLE (503,
 * retryable) for any failure of the store. `ping` fails with a plain Error for operators.
 */
export interface StorageDriver {
  /** `local` or `minio`. */
  readonly name: string;
  /**
   * Streams `source` (a readable stream or a local file path) into the object `key`
   * (`meta.move`: the file may be moved rather than copied). Never buffers the whole object in memory; a failed write leaves no partial object.
   * @returns the stored size in bytes; `moved: true` when a `move` source was taken (renamed into
   *   place: nothing is left at its path, so the caller need not remove it).
   * @throws the source's own error, or an Error for a stream of the wrong `size_bytes` (nothing stored)
   * @throws StorageError STORAGE_UNAVAILABLE when the store fails
   */
  put(key: string, source: Readable | string, meta: StoragePutMeta): Promise<{ size_bytes: number; moved?: true }>;
  /** @throws StorageNotFoundError */
  read(key: string): Promise<Readable>;
  /**
   * Reads bytes `start`..`end` (inclusive, like an HTTP Range) of the object, for players that seek.
   * @throws StorageNotFoundError
   */
  readRange(key: string, start: number, end: number): Promise<Readable>;
  /** Size in bytes of the object. @throws StorageNotFoundError */
  size(key: string): Promise<number>;
  /** Copies the object to a local file (workers decode from local disk). @throws StorageNotFoundError */
  download(key: string, destinationPath: string): Promise<void>;
  /** Deletes the object; deleting a missing key is not an error. @throws StorageError STORAGE_UNAVAILABLE */
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Lists keys under a prefix (used by retention and by tests counting orphans). */
  list(prefix: string): Promise<string[]>;
  /**
   * Lists objects under a prefix with their last-modified time and size in bytes, sorted by key.
   * Retention deletes by the job's age in Postgres; this lets its sweep also find orphaned objects
   * (stored, but no transcript row refers to them).
   */
  listWithDates(prefix: string): Promise<StoredObjectInfo[]>;
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
