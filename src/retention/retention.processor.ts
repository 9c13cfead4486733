import { InjectQueue, Processor } from '@nestjs/bullmq';
import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Queue } from 'bullmq';
import { In, IsNull, LessThan, Not, type Repository } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { AudioRetentionService } from '../storage/retention.js';
import { TranscriptEntity } from '../transcripts/transcript.entity.js';
import { CatalogWorkerHost } from '../transcription/catalog-worker-host.js';
import { MaintenanceJobName, QueueName } from '../transcription/job-catalog.js';

/** Transcripts handled per batch of a sweep. */
const BATCH = 500;

/**
 * Audio retention: a repeatable BullMQ job (one scheduler shared by every worker, every
 * RETENTION_SWEEP_INTERVAL_SEC) deletes the audio of finished jobs older than
 * AUDIO_RETENTION_HOURS and clears `audio_key`; transcripts are kept. It works on any storage
 * (s3rver and plain S3 included), unlike bucket lifecycle rules.
 */
@Injectable()
export class RetentionSweeper {
  private readonly logger = new Logger(RetentionSweeper.name);

  constructor(
    private readonly retention: AudioRetentionService,
    @InjectRepository(TranscriptEntity) private readonly transcripts: Repository<TranscriptEntity>,
  ) {}

  /** One sweep. @returns how many audio objects were deleted. */
  async sweep(now: Date = new Date()): Promise<number> {
    const cutoff = this.retention.cutoff(now);
    if (!cutoff) return 0;
    let deletedTotal = 0;
    for (;;) {
      const due = await this.transcripts.find({
        select: { id: true, audioKey: true },
        where: { createdAt: LessThan(cutoff), audioKey: Not(IsNull()), status: In(['completed', 'failed']) },
        take: BATCH,
      });
      if (due.length === 0) break;
      const { failed } = await this.retention.deleteAudio(due.map((t) => t.audioKey!));
      const failedKeys = new Set(failed);
      const done = due.filter((t) => !failedKeys.has(t.audioKey!)).map((t) => t.id);
      if (done.length) await this.transcripts.update({ id: In(done) }, { audioKey: null });
      deletedTotal += done.length;
      // Keys that failed stay set and are tried again next sweep; stop rather than loop on them.
      if (done.length === 0 || due.length < BATCH) break;
    }
    if (deletedTotal) this.logger.log(`retention: deleted the audio of ${deletedTotal} transcript(s) created before ${cutoff.toISOString()}`);
    return deletedTotal;
  }
}

/** Worker for the maintenance queue; registers the retention schedule at boot (idempotent upsert). */
@Processor(QueueName.Maintenance)
export class MaintenanceProcessor extends CatalogWorkerHost implements OnApplicationBootstrap {
  readonly queueName = QueueName.Maintenance;
  readonly handles = [MaintenanceJobName.AudioRetention] as const;
  protected override outageBackoffMs = 60_000;

  constructor(
    private readonly sweeper: RetentionSweeper,
    private readonly config: AppConfig,
    @InjectQueue(QueueName.Maintenance) private readonly queue: Queue,
  ) {
    super();
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.queue.upsertJobScheduler(
      MaintenanceJobName.AudioRetention,
      { every: this.config.RETENTION_SWEEP_INTERVAL_SEC * 1000 },
      { name: MaintenanceJobName.AudioRetention, opts: { removeOnComplete: 10, removeOnFail: 10 } },
    );
  }

  protected async handle(): Promise<{ deleted: number }> {
    return { deleted: await this.sweeper.sweep() };
  }
}
