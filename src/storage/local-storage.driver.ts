import { createReadStream, createWriteStream } from 'node:fs';
import { access, copyFile, mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { firstFailure } from './first-failure.js';
import type { StorageDriver, StoragePutMeta, StoredObjectInfo } from './storage.driver.js';
import { StorageError, StorageNotFoundError, storageUnavailable } from './storage.errors.js';

/**
 * StorageDriver on the local filesystem under a root directory (DATA_DIR). The embedded default:
 * API and workers must share the directory (same machine or a shared volume).
 *
 * File-system errors of object operations are translated here: ENOENT of an object becomes
 * StorageNotFoundError, anything else StorageError STORAGE_UNAVAILABLE (the path is a private
 * detail, never in the public message).
 */
export class LocalStorageDriver implements StorageDriver {
  readonly name = 'local';

  constructor(private readonly root: string) {}

  /** Maps a key to a path inside the root; keys that would escape it are a programming error. */
  private pathOf(key: string): string {
    const resolved = path.resolve(this.root, key);
    if (!resolved.startsWith(path.resolve(this.root) + path.sep)) throw new Error(`invalid storage key: ${key}`);
    return resolved;
  }

  /**
   * @throws the source's own error when a stream source fails (nothing is stored)
   * @throws StorageError STORAGE_UNAVAILABLE when the file cannot be written
   */
  async put(key: string, source: Readable | string, meta: StoragePutMeta): Promise<{ size_bytes: number; moved?: true }> {
    const target = this.pathOf(key);
    if (typeof source === 'string' && meta.move) return this.moveIn(key, source, target, meta.size_bytes);
    // Write to a sibling temp file and rename: readers never see a half-written object.
    const partial = `${target}.${randomUUID()}.part`;
    let failed: () => 'source' | 'file' | undefined = () => undefined;
    try {
      await mkdir(path.dirname(target), { recursive: true });
      if (typeof source === 'string') await copyFile(source, partial);
      else {
        const file = createWriteStream(partial);
        failed = firstFailure({ source, file });
        await pipeline(source, file);
      }
      await rename(partial, target);
      return { size_bytes: (await stat(target)).size };
    } catch (err) {
      await rm(partial, { force: true });
      if (failed() === 'source') throw err;
      const { code, message } = err as NodeJS.ErrnoException;
      throw storageUnavailable('storing', { driver: this.name, root: this.root, key, error: code ? `${code}: ${message}` : message }, err);
    }
  }

  /**
   * Takes a file the caller is done with: one rename when DATA_DIR and the file share a file
   * system (no bytes copied; a rename is atomic, so readers never see half an object), else the
   * copy-and-rename of put() (EXDEV), the source left for the caller to remove.
   * @param sizeBytes the file's size when the caller knows it, saving a stat.
   */
  private async moveIn(key: string, source: string, target: string, sizeBytes?: number): Promise<{ size_bytes: number; moved?: true }> {
    try {
      const size = sizeBytes ?? (await stat(source)).size;
      await mkdir(path.dirname(target), { recursive: true });
      try {
        await rename(source, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        return await this.put(key, source, { contentType: '' });
      }
      return { size_bytes: size, moved: true };
    } catch (err) {
      // A key's directory is made for it (audio/<transcript id>/): a failed move leaves none behind.
      await rmdir(path.dirname(target)).catch(() => undefined);
      if (err instanceof StorageError) throw err;
      const { code, message } = err as NodeJS.ErrnoException;
      throw storageUnavailable('storing', { driver: this.name, root: this.root, key, error: code ? `${code}: ${message}` : message }, err);
    }
  }

  async readRange(key: string, start: number, end: number): Promise<Readable> {
    if (!(await this.exists(key))) throw new StorageNotFoundError(key);
    return createReadStream(this.pathOf(key), { start, end });
  }

  async size(key: string): Promise<number> {
    try {
      return (await stat(this.pathOf(key))).size;
    } catch (err) {
      throw this.failure('reading', key, err);
    }
  }

  async read(key: string): Promise<Readable> {
    const file = this.pathOf(key);
    if (!(await this.exists(key))) throw new StorageNotFoundError(key);
    return createReadStream(file);
  }

  async download(key: string, destinationPath: string): Promise<void> {
    try {
      await copyFile(this.pathOf(key), destinationPath);
    } catch (err) {
      throw this.failure('downloading', key, err);
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await rm(file, { force: true });
    } catch (err) {
      throw this.failure('deleting', key, err);
    }
    // Remove now-empty parent directories up to the root so deleted jobs leave nothing behind.
    let dir = path.dirname(file);
    const root = path.resolve(this.root);
    while (dir.startsWith(root + path.sep)) {
      try {
        if ((await readdir(dir)).length > 0) break;
        await rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await access(this.pathOf(key));
      return true;
    } catch {
      return false;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const root = path.resolve(this.root);
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (!e.name.endsWith('.part')) out.push(path.relative(root, full).split(path.sep).join('/'));
      }
    };
    await walk(root);
    return out.filter((k) => k.startsWith(prefix)).sort();
  }

  /** Keys under `prefix` with the file's mtime as lastModified; files removed meanwhile are skipped. */
  async listWithDates(prefix: string): Promise<StoredObjectInfo[]> {
    const out: StoredObjectInfo[] = [];
    for (const key of await this.list(prefix)) {
      try {
        const st = await stat(this.pathOf(key));
        out.push({ key, lastModified: st.mtime, size_bytes: st.size });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return out;
  }

  presignedGetUrl(): Promise<string | null> {
    return Promise.resolve(null);
  }

  /** StorageNotFoundError for ENOENT, StorageError STORAGE_UNAVAILABLE otherwise (the path in the details). */
  private failure(operation: string, key: string, err: unknown): StorageError {
    if (err instanceof StorageError) return err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new StorageNotFoundError(key, err);
    const { code, message } = err as NodeJS.ErrnoException;
    return storageUnavailable(operation, { driver: this.name, root: this.root, key, error: code ? `${code}: ${message}` : message }, err);
  }

  /** Readiness (operators only): the root directory exists or can be created. @throws the file-system error */
  async ping(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await access(this.root);
  }
}
