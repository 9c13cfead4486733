import { Column, CreateDateColumn, Entity, JoinColumn, OneToOne, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { TranscriptEntity } from '../transcripts/transcript.entity.js';

/** Table `transcript_jobs`: one row per transcription job (the seed design), linked 1:1 to its transcript. */
@Entity({ name: 'transcript_jobs' })
export class TranscriptJobEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'transcript_id', type: 'uuid', unique: true, nullable: true })
  transcriptId: string;

  @OneToOne(() => TranscriptEntity)
  @JoinColumn({ name: 'transcript_id' })
  transcript?: TranscriptEntity;

  /** The BullMQ job id (also the public `job_id`). */
  @Column({ name: 'job_id', type: 'varchar', length: 255, unique: true })
  jobId: string;

  /** Canonical engine id (text; the application checks it against EngineRegistry). */
  @Column({ type: 'varchar', length: 64 })
  engine: string;

  /** Request options as given to the engine (language, model, diarization…). */
  @Column({ name: 'engine_params', type: 'jsonb', default: () => "'{}'::jsonb" })
  engineParams: Record<string, unknown>;

  /** Where the job's completion/failure webhook is POSTed (validated at submission), or null for none. */
  @Column({ name: 'callback_url', type: 'text', nullable: true })
  callbackUrl: string | null;

  /** `host:pid` of the worker that ran the latest attempt. */
  @Column({ name: 'worker_id', type: 'varchar', length: 255, nullable: true })
  workerId: string | null;

  @Column({ type: 'int', default: 0 })
  attempts: number;

  @Column({ name: 'max_retries', type: 'int', default: 3 })
  maxRetries: number;

  @Column({ name: 'started_at', type: 'timestamptz', nullable: true })
  startedAt: Date | null;

  @Column({ name: 'completed_at', type: 'timestamptz', nullable: true })
  completedAt: Date | null;

  /** Last error (EngineError.toJSON() or an intake error), with the attempt it happened on. */
  @Column({ name: 'error_details', type: 'jsonb', nullable: true })
  errorDetails: Record<string, unknown> | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
