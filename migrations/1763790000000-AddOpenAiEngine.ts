import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Adds the engine id `openai` (the OpenAI-compatible adapter's configured instance for the
 * OpenAI cloud or another compatible server) to the `transcription_engine` enum, so its jobs can
 * be recorded in transcript_jobs.
 */
export class AddOpenAiEngine1763790000000 implements MigrationInterface {
  name = 'AddOpenAiEngine1763790000000';

  async up(q: QueryRunner): Promise<void> {
    // Allowed inside a transaction since PostgreSQL 12; the value is only used by later transactions.
    await q.query(`ALTER TYPE "transcription_engine" ADD VALUE IF NOT EXISTS 'openai'`);
  }

  /**
   * PostgreSQL cannot drop an enum value, so the type is rebuilt without it (keeping the other
   * values in their order) and the column converted through text.
   *
   * @throws Error when transcript_jobs rows still use 'openai': they would not fit the new type.
   */
  async down(q: QueryRunner): Promise<void> {
    const [{ n }] = (await q.query(`SELECT count(*)::int AS n FROM "transcript_jobs" WHERE "engine"::text = 'openai'`)) as { n: number }[];
    if (n > 0) {
      throw new Error(
        `Cannot remove 'openai' from the transcription_engine enum: ${n} transcript_jobs row(s) use it. Delete those rows or change their engine first.`,
      );
    }
    const values = ((await q.query(`SELECT unnest(enum_range(NULL::"transcription_engine"))::text AS v`)) as { v: string }[])
      .map((r) => r.v)
      .filter((v) => v !== 'openai');
    const list = values.map((v) => `'${v.replace(/'/g, "''")}'`).join(', ');
    await q.query(`ALTER TYPE "transcription_engine" RENAME TO "transcription_engine_old"`);
    await q.query(`CREATE TYPE "transcription_engine" AS ENUM (${list})`);
    await q.query(`ALTER TABLE "transcript_jobs" ALTER COLUMN "engine" TYPE "transcription_engine" USING "engine"::text::"transcription_engine"`);
    await q.query(`DROP TYPE "transcription_engine_old"`);
  }
}
