import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { WebhookEvent } from './webhook.constants.js';

/**
 * Table `webhook_deliveries` (migrations/1763810000000-WebhooksIdempotency.ts): one row per
 * attempt to deliver a webhook, successful or not — the audit trail of what the receiver saw.
 * No foreign key to transcript_jobs: the log may outlive a job row, and nothing joins on it.
 */
@Entity({ name: 'webhook_deliveries' })
export class WebhookDeliveryEntity {
  /** Id of this attempt's row. */
  @PrimaryGeneratedColumn('uuid')
  id: string;

  /** X-Webhook-Id: the same for every attempt of one delivery. */
  @Column({ name: 'delivery_id', type: 'uuid' })
  deliveryId: string;

  /** Public job id (transcript_jobs.job_id). */
  @Column({ name: 'job_id', type: 'varchar', length: 255 })
  jobId: string;

  @Column({ name: 'transcript_id', type: 'uuid', nullable: true })
  transcriptId: string | null;

  @Column({ type: 'text' })
  url: string;

  @Column({ type: 'varchar', length: 64 })
  event: WebhookEvent;

  /** 1-based attempt number within the delivery. */
  @Column({ type: 'int' })
  attempt: number;

  /** The receiver's HTTP status, or null when no response came (network error, timeout, refused address). */
  @Column({ name: 'status_code', type: 'int', nullable: true })
  statusCode: number | null;

  /** Why the attempt did not count as delivered (network error, or the status and the start of the response body). */
  @Column({ type: 'text', nullable: true })
  error: string | null;

  /** Milliseconds from sending the request to the end of the response (or the failure). */
  @Column({ name: 'duration_ms', type: 'int' })
  durationMs: number;

  /** True for a 2xx answer. */
  @Column({ type: 'boolean' })
  delivered: boolean;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
