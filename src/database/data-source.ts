import 'reflect-metadata';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { InitialSchema1763780000000 } from '../../migrations/1763780000000-InitialSchema.js';
import { AddOpenAiEngine1763790000000 } from '../../migrations/1763790000000-AddOpenAiEngine.js';
import { Contexts1763800000000 } from '../../migrations/1763800000000-Contexts.js';
import { WebhooksIdempotency1763810000000 } from '../../migrations/1763810000000-WebhooksIdempotency.js';
import { EngineIdText1763820000000 } from '../../migrations/1763820000000-EngineIdText.js';
import { ContextEntity } from '../contexts/context.entity.js';
import { TranscriptJobEntity } from '../transcription/transcript-job.entity.js';
import { TranscriptEntity } from '../transcripts/transcript.entity.js';
import { WebhookDeliveryEntity } from '../webhooks/webhook-delivery.entity.js';
import { IdempotencyKeyEntity } from '../idempotency/idempotency-key.entity.js';

/**
 * Every migration, in order. Listed explicitly rather than globbed: the same list then works
 * compiled (dist/) and under ts-jest, and TypeORM never needs a dynamic import.
 */
export const MIGRATIONS = [InitialSchema1763780000000, AddOpenAiEngine1763790000000, Contexts1763800000000, WebhooksIdempotency1763810000000, EngineIdText1763820000000];

/** Every entity the gateway maps. */
export const ENTITIES = [TranscriptEntity, TranscriptJobEntity, ContextEntity, WebhookDeliveryEntity, IdempotencyKeyEntity];

/**
 * The one DataSource definition, used by the app (TypeOrmModule) and by the TypeORM CLI
 * (`npm run migration:run|revert`). Schema changes only ever come from migrations/.
 */
export function dataSourceOptions(url: string = process.env.DATABASE_URL ?? 'postgres://gateway:gateway@127.0.0.1:54329/gateway'): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    uuidExtension: 'pgcrypto',
  };
}

/** Used by the TypeORM CLI: `typeorm migration:run -d dist/src/database/data-source.js`. */
export default new DataSource(dataSourceOptions());
