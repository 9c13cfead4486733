import 'reflect-metadata';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { TranscriptJobEntity } from '../jobs/transcript-job.entity.js';
import { TranscriptEntity } from '../transcripts/transcript.entity.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Every entity the gateway maps. */
export const ENTITIES = [TranscriptEntity, TranscriptJobEntity];

/**
 * The one DataSource definition, used by the app (TypeOrmModule) and by the TypeORM CLI
 * (`npm run migration:run|revert`). Schema changes only ever come from migrations/.
 */
export function dataSourceOptions(url: string = process.env.DATABASE_URL ?? 'postgres://gateway:gateway@127.0.0.1:54329/gateway'): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    // Compiled (dist/src/database → dist/migrations/*.js) or ts-jest (src/database → migrations/*.ts).
    migrations: [path.join(here, '..', '..', 'migrations', here.includes(`${path.sep}dist${path.sep}`) ? '*.js' : '*.ts')],
    migrationsTableName: 'migrations',
    synchronize: false,
    uuidExtension: 'pgcrypto',
  };
}

/** Used by the TypeORM CLI: `typeorm migration:run -d dist/src/database/data-source.js`. */
export default new DataSource(dataSourceOptions());
