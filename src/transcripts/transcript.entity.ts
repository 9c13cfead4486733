import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import type { Segment } from '../engines/engine.spec.js';

/** Lifecycle of a transcript; mirrors the job's state. */
export const TRANSCRIPT_STATUSES = ['queued', 'processing', 'completed', 'failed'] as const;
export type TranscriptStatus = (typeof TRANSCRIPT_STATUSES)[number];

const numeric = { to: (v: number | null) => v, from: (v: string | null) => (v === null ? null : Number(v)) };

/** What the gateway records about how a result was made (engine, model, warnings, timings). */
export interface TranscriptMetadata {
  engine?: string;
  model?: string;
  warnings?: string[];
  /** Seconds of wall time the transcription took. */
  processing_sec?: number;
  /** Real-time factor: processing seconds / audio seconds. */
  rtf?: number;
  [key: string]: unknown;
}

/** Table `transcripts` (created by migrations/1763780000000-InitialSchema.ts). */
@Entity({ name: 'transcripts' })
export class TranscriptEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'session_id', type: 'uuid', nullable: true })
  sessionId: string | null;

  /** The client's file name, sanitised (no directories). */
  @Column({ type: 'varchar', length: 255 })
  filename: string;

  /** Storage key of the uploaded audio; null once retention has deleted it. */
  @Column({ name: 'audio_key', type: 'varchar', length: 1024, nullable: true })
  audioKey: string | null;

  @Column({ name: 'mime_type', type: 'varchar', length: 255, nullable: true })
  mimeType: string | null;

  /** Bytes of the upload. */
  @Column({ name: 'size_bytes', type: 'bigint', nullable: true, transformer: numeric })
  sizeBytes: number | null;

  /** Seconds of audio. */
  @Column({ name: 'duration_sec', type: 'double precision', nullable: true })
  durationSec: number | null;

  @Column({ type: 'varchar', length: 32, nullable: true })
  language: string | null;

  @Column({ type: 'varchar', length: 16, default: 'queued' })
  status: TranscriptStatus;

  @Column({ type: 'text', nullable: true })
  text: string | null;

  /** Normalized segments (see engines/engine.spec.ts Segment), times in seconds. */
  @Column({ type: 'jsonb', nullable: true })
  segments: Segment[] | null;

  /** Speaker tag → role name, e.g. {"0": "provider", "1": "patient"}. */
  @Column({ name: 'speaker_roles', type: 'jsonb', nullable: true })
  speakerRoles: Record<string, string> | null;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  metadata: TranscriptMetadata;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
