import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The gateway's first schema: `transcripts`, the `transcription_engine` enum with every engine id
 * the project has, and `transcript_jobs` exactly as the seed design.
 */
export class InitialSchema1763780000000 implements MigrationInterface {
  name = 'InitialSchema1763780000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE EXTENSION IF NOT EXISTS pgcrypto`);
    await q.query(`CREATE TYPE "transcription_engine" AS ENUM ('riva', 'whisperx', 'whisper-rocm', 'pocketsphinx')`);
    await q.query(`
      CREATE TABLE "transcripts" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "session_id" uuid NULL,
        "filename" varchar(255) NOT NULL,
        "audio_key" varchar(1024) NULL,
        "mime_type" varchar(255) NULL,
        "size_bytes" bigint NULL,
        "duration_sec" double precision NULL,
        "language" varchar(32) NULL,
        "status" varchar(16) NOT NULL DEFAULT 'queued'
          CONSTRAINT "transcripts_status_check" CHECK ("status" IN ('queued', 'processing', 'completed', 'failed')),
        "text" text NULL,
        "segments" jsonb NULL,
        "speaker_roles" jsonb NULL,
        "metadata" jsonb NOT NULL DEFAULT '{}'::jsonb,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX "transcripts_session_id_idx" ON "transcripts" ("session_id") WHERE "session_id" IS NOT NULL`);
    await q.query(`CREATE INDEX "transcripts_created_at_idx" ON "transcripts" ("created_at")`);
    await q.query(`
      CREATE TABLE "transcript_jobs" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "transcript_id" uuid UNIQUE REFERENCES "transcripts"("id"),
        "job_id" varchar(255) UNIQUE NOT NULL,
        "engine" "transcription_engine" NOT NULL,
        "engine_params" jsonb DEFAULT '{}'::jsonb,
        "worker_id" varchar(255),
        "attempts" int DEFAULT 0,
        "max_retries" int DEFAULT 3,
        "started_at" timestamptz,
        "completed_at" timestamptz,
        "error_details" jsonb,
        "created_at" timestamptz DEFAULT now(),
        "updated_at" timestamptz DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "transcript_jobs"`);
    await q.query(`DROP TABLE "transcripts"`);
    await q.query(`DROP TYPE "transcription_engine"`);
  }
}
