import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { AppConfig } from '../config/app-config.js';

/** A job's private scratch directory; `dispose()` removes it and everything in it. */
export interface TempWorkspace {
  readonly dir: string;
  /** Absolute path of a file inside the workspace. */
  file(name: string): string;
  dispose(): Promise<void>;
}

/**
 * Per-job scratch directories under TEMP_DIR/jobs, plus TEMP_DIR/uploads where multipart uploads
 * land before validation. Directories older than MAX_TEMP_AGE_HOURS (left by a crashed process)
 * are removed at startup.
 */
@Injectable()
export class TempWorkspaceService implements OnModuleInit {
  private readonly logger = new Logger(TempWorkspaceService.name);

  constructor(private readonly config: AppConfig) {}

  get uploadsDir(): string {
    return path.join(this.config.TEMP_DIR, 'uploads');
  }

  private get jobsDir(): string {
    return path.join(this.config.TEMP_DIR, 'jobs');
  }

  async onModuleInit(): Promise<void> {
    await mkdir(this.uploadsDir, { recursive: true });
    await mkdir(this.jobsDir, { recursive: true });
    const removed = await this.removeStale(this.config.MAX_TEMP_AGE_HOURS * 3600 * 1000);
    if (removed > 0) this.logger.log(`removed ${removed} stale temp entr${removed === 1 ? 'y' : 'ies'} older than ${this.config.MAX_TEMP_AGE_HOURS} h`);
  }

  /** Creates an isolated directory for one job (unique even when a job is retried concurrently elsewhere). */
  async create(jobId: string): Promise<TempWorkspace> {
    await mkdir(this.jobsDir, { recursive: true });
    const safe = jobId.replace(/[^A-Za-z0-9_-]/g, '_');
    const dir = await mkdtemp(path.join(this.jobsDir, `${safe}-`));
    return {
      dir,
      file: (name: string) => path.join(dir, path.basename(name)),
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  }

  /** Removes entries of uploads/ and jobs/ whose mtime is older than `maxAgeMs`; returns how many. */
  async removeStale(maxAgeMs: number): Promise<number> {
    const cutoff = Date.now() - maxAgeMs;
    let removed = 0;
    for (const parent of [this.uploadsDir, this.jobsDir]) {
      let names: string[] = [];
      try {
        names = await readdir(parent);
      } catch {
        continue;
      }
      for (const name of names) {
        const full = path.join(parent, name);
        try {
          if ((await stat(full)).mtimeMs < cutoff) {
            await rm(full, { recursive: true, force: true });
            removed++;
          }
        } catch {
          // vanished meanwhile (another process cleaned it)
        }
      }
    }
    return removed;
  }
}
