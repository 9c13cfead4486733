import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source.js';
import { PG_SUPERUSER_URL, TEST_DATABASE_URL } from '../support/env.js';

/** Runs the migrations on a database created for this test, so it starts truly clean. */
describe('migrations on a clean database', () => {
  const dbName = `gateway_migrations_${process.pid}`;
  const admin = new DataSource({ type: 'postgres', url: PG_SUPERUSER_URL });
  let ds: DataSource;

  beforeAll(async () => {
    await admin.initialize();
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${dbName}"`);
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${dbName}`;
    ds = new DataSource(dataSourceOptions(url.toString()));
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.destroy();
  });

  const tables = async () =>
    (await ds.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'migrations' ORDER BY 1`)).map((r: { table_name: string }) => r.table_name);

  it('runs, reverts completely, and runs again', async () => {
    const applied = await ds.runMigrations();
    expect(applied.length).toBeGreaterThan(0);
    expect(await tables()).toEqual(expect.arrayContaining(['transcript_jobs', 'transcripts']));
    // Engine ids are text checked by the application: the enum of the first migrations is gone.
    expect(await ds.query(`SELECT 1 FROM pg_type WHERE typname = 'transcription_engine'`)).toEqual([]);

    for (let i = 0; i < applied.length; i++) await ds.undoLastMigration();
    expect(await tables()).toEqual([]);
    expect(await ds.query(`SELECT 1 FROM pg_type WHERE typname = 'transcription_engine'`)).toEqual([]);

    expect((await ds.runMigrations()).length).toBe(applied.length);
    expect(await ds.showMigrations()).toBe(false);
  });

  it('creates transcript_jobs as the seed design: unique transcript and job ids, engine id as checked text, defaults', async () => {
    const columns = await ds.query(
      `SELECT column_name, data_type, udt_name, is_nullable, column_default FROM information_schema.columns WHERE table_name = 'transcript_jobs'`,
    );
    const col = (name: string) => columns.find((c: { column_name: string }) => c.column_name === name);
    expect(col('job_id')).toMatchObject({ data_type: 'character varying', is_nullable: 'NO' });
    expect(col('engine')).toMatchObject({ data_type: 'character varying', is_nullable: 'NO' });
    expect(col('attempts').column_default).toBe('0');
    expect(col('max_retries').column_default).toBe('3');
    expect(col('engine_params').column_default).toContain("'{}'");
    const [t] = await ds.query(`INSERT INTO transcripts (filename) VALUES ('a.wav') RETURNING id`);
    await ds.query(`INSERT INTO transcript_jobs (transcript_id, job_id, engine) VALUES ($1, 'j1', 'pocketsphinx')`, [t.id]);
    await expect(ds.query(`INSERT INTO transcript_jobs (transcript_id, job_id, engine) VALUES ($1, 'j2', 'pocketsphinx')`, [t.id])).rejects.toThrow(/unique/);
    await expect(ds.query(`INSERT INTO transcript_jobs (job_id, engine) VALUES ('j1', 'riva')`)).rejects.toThrow(/unique/);
    // A new engine needs no migration; a malformed id is still refused.
    await ds.query(`INSERT INTO transcript_jobs (job_id, engine) VALUES ('j3', 'vosk')`);
    await expect(ds.query(`INSERT INTO transcript_jobs (job_id, engine) VALUES ('j5', 'Not An Id!')`)).rejects.toThrow(/transcript_jobs_engine_id/);
    await expect(ds.query(`INSERT INTO transcript_jobs (transcript_id, job_id, engine) VALUES (gen_random_uuid(), 'j4', 'riva')`)).rejects.toThrow(/foreign key/);
  });
});
