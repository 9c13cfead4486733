import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * Table `idempotency_keys` (migrations/1763810000000-WebhooksIdempotency.ts): one row per
 * (scope, Idempotency-Key). `response` is null while the first request is in flight and holds its
 * answer once it succeeded. Rows older than IDEMPOTENCY_TTL_HOURS are ignored, replaced on reuse
 * and purged. Written with SQL by IdempotencyService (the claim must be one atomic statement);
 * mapped here so the schema is visible to TypeORM.
 */
@Entity({ name: 'idempotency_keys' })
export class IdempotencyKeyEntity {
  /**
   * Whose key it is: the caller's API key label (ApiKeyGuard's short hash of the key, `anonymous`
   * with authentication off), so clients with different API keys never share keys.
   */
  @PrimaryColumn({ type: 'varchar', length: 255 })
  scope: string;

  /** The Idempotency-Key header: 1–255 printable ASCII characters. */
  @PrimaryColumn({ type: 'varchar', length: 255 })
  key: string;

  /** Hex SHA-256 of the request (form fields, upload bytes; see idempotencyRequestHash()). */
  @Column({ name: 'request_hash', type: 'char', length: 64 })
  requestHash: string;

  /** The job the first request created, once it succeeded. */
  @Column({ name: 'job_id', type: 'varchar', length: 255, nullable: true })
  jobId: string | null;

  /** The first request's response body, replayed for the same key and body; null while in flight. */
  @Column({ type: 'jsonb', nullable: true })
  response: Record<string, unknown> | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
