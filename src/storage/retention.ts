import { Inject, Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { STORAGE_DRIVER, type StorageDriver } from './storage.driver.js';

/** Deletes run this many at a time: enough to clear a backlog quickly without flooding the store. */
const DELETE_CONCURRENCY = 8;

/**
 * The storage half of audio retention: uploaded audio is deleted AUDIO_RETENTION_HOURS after its
 * transcript was created; transcripts are kept. Retention is the gateway's own scheduled deletion
 * (not a bucket lifecycle rule) so that it works on every driver and every S3-compatible store.
 *
 * Which keys are due is decided by the caller from Postgres (transcripts older than the cutoff
 * whose audio_key is set); this service deletes them and finds objects no transcript refers to.
 */
@Injectable()
export class AudioRetentionService {
  private readonly logger = new Logger(AudioRetentionService.name);

  constructor(
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    private readonly config: AppConfig,
  ) {}

  /** Audio created before this instant is due for deletion; null when AUDIO_RETENTION_HOURS is 0 (kept forever). */
  cutoff(now: Date = new Date()): Date | null {
    const hours = this.config.AUDIO_RETENTION_HOURS;
    return hours > 0 ? new Date(now.getTime() - hours * 3_600_000) : null;
  }

  /**
   * Deletes the objects `keys`. Deleting is idempotent, so a key already gone counts as deleted;
   * a failure of one key does not stop the others.
   *
   * @returns how many keys are now gone, and the keys whose deletion failed (logged; the caller
   *   keeps their audio_key so that the next run tries again).
   */
  async deleteAudio(keys: readonly string[]): Promise<{ deleted: number; failed: string[] }> {
    const failed: string[] = [];
    let deleted = 0;
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const key = keys[next++];
        try {
          await this.storage.delete(key);
          deleted++;
        } catch (err) {
          failed.push(key);
          this.logger.warn(`retention could not delete ${key}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, worker));
    return { deleted, failed };
  }

  /**
   * Objects under `prefix` that no transcript refers to (their key is not in `knownKeys`) and that
   * were last written before `olderThan`: left by a crash between storing an upload and committing
   * its rows, or by rows deleted without their audio.
   *
   * `olderThan` must lie well in the past (e.g. the retention cutoff, or at least an hour ago):
   * a submission stores its audio before its transcript row is committed, so a fresh object
   * without a row may be a submission in progress.
   *
   * @param knownKeys every audio_key still set in Postgres.
   * @returns keys, sorted.
   */
  async findOrphans(knownKeys: ReadonlySet<string>, olderThan: Date, prefix = 'audio/'): Promise<string[]> {
    const objects = await this.storage.listWithDates(prefix);
    return objects.filter((o) => !knownKeys.has(o.key) && o.lastModified.getTime() < olderThan.getTime()).map((o) => o.key);
  }
}
