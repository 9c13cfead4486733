import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `contexts`: phrase lists for word boosting (seed 002 `context_id`). Phrases are `text[]`; each
 * phrase's own boost sits at the same index of `phrase_boosts` (NULL = use the context's `boost`).
 * The CHECK constraints hold the API's bounds (1–1000 phrases, boosts within -100..100, aligned
 * arrays) even for rows written outside the API. Phrase length (≤ 200) is checked by the API only:
 * a CHECK cannot iterate over array elements without a subquery.
 */
export class Contexts1763800000000 implements MigrationInterface {
  name = 'Contexts1763800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "contexts" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "name" varchar(200) NOT NULL
          CONSTRAINT "contexts_name_check" CHECK (char_length(btrim("name")) > 0),
        "language" varchar(32) NULL,
        "phrases" text[] NOT NULL
          CONSTRAINT "contexts_phrases_check" CHECK (
            cardinality("phrases") BETWEEN 1 AND 1000
            AND array_position("phrases", NULL) IS NULL
            AND '' <> ALL ("phrases")
          ),
        "phrase_boosts" real[] NOT NULL DEFAULT '{}'
          CONSTRAINT "contexts_phrase_boosts_range_check" CHECK (-100 <= ALL ("phrase_boosts") AND 100 >= ALL ("phrase_boosts")),
        "boost" real NOT NULL DEFAULT 20
          CONSTRAINT "contexts_boost_check" CHECK ("boost" BETWEEN -100 AND 100),
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "contexts_phrase_boosts_aligned_check" CHECK (cardinality("phrase_boosts") = cardinality("phrases"))
      )`);
    await q.query(`CREATE INDEX "contexts_created_at_idx" ON "contexts" ("created_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "contexts"`);
  }
}
