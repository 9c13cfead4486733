import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Engine ids the enum held before this migration (restored by `down`). */
const ENUM_VALUES = ['riva', 'whisperx', 'whisper-rocm', 'pocketsphinx', 'openai'];

/**
 * `transcript_jobs.engine` becomes text checked by the application (EngineRegistry knows the
 * engines), so adding an engine needs no enum migration. The database keeps a format check: a
 * lower-case id of letters, digits and dashes, at most 64 characters.
 */
export class EngineIdText1763820000000 implements MigrationInterface {
  name = 'EngineIdText1763820000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "transcript_jobs" ALTER COLUMN "engine" TYPE varchar(64) USING "engine"::text`);
    await q.query(`ALTER TABLE "transcript_jobs" ADD CONSTRAINT "transcript_jobs_engine_id" CHECK ("engine" ~ '^[a-z0-9][a-z0-9-]{0,63}$')`);
    await q.query(`DROP TYPE "transcription_engine"`);
  }

  /** @throws Error when rows name an engine the old enum cannot hold. */
  async down(q: QueryRunner): Promise<void> {
    const list = ENUM_VALUES.map((v) => `'${v}'`).join(', ');
    const [{ n }] = (await q.query(`SELECT count(*)::int AS n FROM "transcript_jobs" WHERE "engine" NOT IN (${list})`)) as [{ n: number }];
    if (n > 0) throw new Error(`Cannot restore the transcription_engine enum: ${n} transcript_jobs row(s) name other engines. Delete those rows or change their engine first.`);
    await q.query(`CREATE TYPE "transcription_engine" AS ENUM (${list})`);
    await q.query(`ALTER TABLE "transcript_jobs" DROP CONSTRAINT "transcript_jobs_engine_id"`);
    await q.query(`ALTER TABLE "transcript_jobs" ALTER COLUMN "engine" TYPE "transcription_engine" USING "engine"::"transcription_engine"`);
  }
}
