import { BullModule } from '@nestjs/bullmq';
import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { dataSourceOptions } from './database/data-source.js';
import { EnginesModule } from './engines/engines.module.js';
import type { TranscriptionEngine } from './engines/engine.spec.js';
import { HealthModule } from './health/health.module.js';
import { JobsModule } from './jobs/jobs.module.js';
import { StorageModule } from './storage/storage.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { AuthModule } from './auth/auth.module.js';
import { WebModule } from './web/web.module.js';
import { OpenAiApiModule } from './openai-api/openai-api.module.js';
import { redisConnection } from './common/redis.js';
import { ApiErrorFilter } from './common/api-error.filter.js';
import { TranscriptionModule } from './transcription/transcription.module.js';
import { RetentionModule } from './retention/retention.module.js';
import { WebhooksModule } from './webhooks/webhooks.module.js';

/**
 * The composition root. `APP_ROLE` decides what this process runs: `api` (HTTP, SSE, health
 * probes), `worker` (BullMQ processors), or `all`. Both roles share config, database, queue and
 * storage, so workers can run on other machines against the same Redis, Postgres and storage.
 */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, engines: TranscriptionEngine[]): DynamicModule {
    const api = config.APP_ROLE !== 'worker';
    const worker = config.APP_ROLE !== 'api';
    const enginesModule = EnginesModule.register(engines, { probeHealth: api });
    const transcriptionModule = TranscriptionModule.register({ api, worker, engines: enginesModule, engineList: engines, config });
    // Both roles: the API checks callback URLs, workers queue and deliver webhooks.
    const webhooksModule = WebhooksModule.register({ worker });
    const jobsModule = api ? JobsModule.register({ transcription: transcriptionModule, engines: enginesModule, webhooks: webhooksModule }) : null;
    const providers: Provider[] = api ? [{ provide: APP_FILTER, useClass: ApiErrorFilter }] : [];
    return {
      module: AppModule,
      providers,
      imports: [
        // Typed pipeline events (TranscriptionEvents); listeners may be async and are awaited.
        EventEmitterModule.forRoot(),
        ConfigModule.forRoot(config),
        TypeOrmModule.forRoot({ ...dataSourceOptions(config.DATABASE_URL), migrationsRun: false }),
        BullModule.forRoot({ connection: redisConnection(config.REDIS_URL), prefix: config.QUEUE_PREFIX }),
        StorageModule,
        MetricsModule.register({ http: api || config.METRICS_PORT > 0 }),
        enginesModule,
        transcriptionModule,
        webhooksModule,
        ...(worker ? [RetentionModule.register()] : []),
        ...(jobsModule ? [jobsModule, AuthModule.register(), HealthModule.register(transcriptionModule), WebModule, OpenAiApiModule.register(jobsModule, enginesModule)] : []),
      ],
    };
  }
}
