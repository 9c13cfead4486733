import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { EntityManager, Repository } from 'typeorm';
import type { TranscriptionResult } from '../engines/engine.spec.js';
import { TranscriptEntity, type TranscriptMetadata, type TranscriptStatus } from './transcript.entity.js';

/** Fields recorded when a transcript is created at submission. */
export interface NewTranscript {
  /** Chosen by the caller so that storage keys can be derived before the row exists. */
  id: string;
  sessionId: string | null;
  filename: string;
  audioKey: string;
  mimeType: string | null;
  sizeBytes: number;
  /** Seconds, from ffprobe at intake (replaced by the decoded duration once transcribed). */
  durationSec: number | null;
  /** Language requested by the client, if any (replaced by the engine's language). */
  language: string | null;
  /** Intake facts (container, codec, sample rate, channels). */
  metadata: TranscriptMetadata;
}

/** Persistence of transcripts (table `transcripts`). Knows nothing about queues or HTTP. */
@Injectable()
export class TranscriptsService {
  constructor(@InjectRepository(TranscriptEntity) private readonly repo: Repository<TranscriptEntity>) {}

  private repository(manager?: EntityManager): Repository<TranscriptEntity> {
    return manager ? manager.getRepository(TranscriptEntity) : this.repo;
  }

  /** Inserts a `queued` transcript; pass `manager` to take part in the caller's transaction. */
  async create(data: NewTranscript, manager?: EntityManager): Promise<TranscriptEntity> {
    const repo = this.repository(manager);
    return repo.save(repo.create({ ...data, status: 'queued' }));
  }

  /** The transcript with that id, or null. */
  findById(id: string): Promise<TranscriptEntity | null> {
    return this.repo.findOneBy({ id });
  }

  /** Sets a transcript's status; pass `manager` to take part in the caller's transaction. */
  async setStatus(id: string, status: TranscriptStatus, manager?: EntityManager): Promise<void> {
    await this.repository(manager).update({ id }, { status });
  }

  /**
   * Stores a finished result. Writing the whole row in one UPDATE makes a re-run of the same job
   * (after a stalled worker) overwrite rather than duplicate segments.
   */
  async saveResult(
    id: string,
    result: TranscriptionResult,
    metadata: TranscriptMetadata,
    manager?: EntityManager,
    speakerRoles: Record<string, string> | null = null,
  ): Promise<void> {
    const repo = this.repository(manager);
    // Intake facts recorded at submission stay; the engine's facts are added to them.
    const current = await repo.findOne({ where: { id }, select: { id: true, metadata: true } });
    await repo.update(
      { id },
      {
        status: 'completed',
        text: result.text,
        language: result.language,
        durationSec: result.duration_sec,
        segments: result.segments,
        speakerRoles,
        metadata: { ...(current?.metadata ?? {}), ...metadata, engine: result.engine.id, model: result.engine.model ?? undefined, warnings: result.warnings },
      },
    );
  }

  /** Deletes a transcript row (used when a submission is rolled back or a finished job is deleted). */
  async delete(id: string, manager?: EntityManager): Promise<void> {
    await this.repository(manager).delete({ id });
  }
}
