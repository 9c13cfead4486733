import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Webhooks and idempotency keys.
 *
 * - `transcript_jobs.callback_url`: where the job's completion/failure webhook goes (NULL = none).
 * - `webhook_deliveries`: one row per delivery attempt (every retry recorded). `delivery_id` is the
 *   X-Webhook-Id shared by the attempts of one delivery. No foreign key to transcript_jobs: the log
 *   is an audit trail that may outlive a job row.
 * - `idempotency_keys`: one row per (scope, Idempotency-Key); `response` NULL while the first
 *   request is in flight. The primary key is what makes concurrent claims of one key race-safe.
 */
export class WebhooksIdempotency1763810000000 implements MigrationInterface {
  name = 'WebhooksIdempotency1763810000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "transcript_jobs" ADD COLUMN "callback_url" text NULL`);
    await q.query(`
      CREATE TABLE "webhook_deliveries" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "delivery_id" uuid NOT NULL,
        "job_id" varchar(255) NOT NULL,
        "transcript_id" uuid NULL,
        "url" text NOT NULL,
        "event" varchar(64) NOT NULL
          CONSTRAINT "webhook_deliveries_event_check" CHECK ("event" IN ('transcription.completed', 'transcription.failed')),
        "attempt" int NOT NULL CONSTRAINT "webhook_deliveries_attempt_check" CHECK ("attempt" >= 1),
        "status_code" int NULL,
        "error" text NULL,
        "duration_ms" int NOT NULL CONSTRAINT "webhook_deliveries_duration_check" CHECK ("duration_ms" >= 0),
        "delivered" boolean NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX "webhook_deliveries_job_id_idx" ON "webhook_deliveries" ("job_id", "created_at")`);
    await q.query(`CREATE INDEX "webhook_deliveries_delivery_id_idx" ON "webhook_deliveries" ("delivery_id")`);
    await q.query(`
      CREATE TABLE "idempotency_keys" (
        "scope" varchar(255) NOT NULL,
        "key" varchar(255) NOT NULL CONSTRAINT "idempotency_keys_key_check" CHECK (char_length("key") >= 1),
        "request_hash" char(64) NOT NULL,
        "job_id" varchar(255) NULL,
        "response" jsonb NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("scope", "key")
      )`);
    await q.query(`CREATE INDEX "idempotency_keys_created_at_idx" ON "idempotency_keys" ("created_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "idempotency_keys"`);
    await q.query(`DROP TABLE "webhook_deliveries"`);
    await q.query(`ALTER TABLE "transcript_jobs" DROP COLUMN "callback_url"`);
  }
}
