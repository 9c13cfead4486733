import { BullModule } from '@nestjs/bullmq';
import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { MulterModule } from '@nestjs/platform-express';
import { TypeOrmModule } from '@nestjs/typeorm';
import { diskStorage } from 'multer';
import { AudioModule } from '../audio/audio.module.js';
import { ContextsModule } from '../contexts/contexts.module.js';
import { AppConfig } from '../config/app-config.js';
import { TempWorkspaceService } from '../storage/temp-workspace.service.js';
import { TranscriptsModule } from '../transcripts/transcripts.module.js';
import { ApiErrorFilter } from './api-error.filter.js';
import { JobEventsService } from './job-events.service.js';
import { JobsController } from './jobs.controller.js';
import { QueueName } from './jobs.constants.js';
import { JobsService } from './jobs.service.js';
import { TranscriptJobEntity } from './transcript-job.entity.js';
import { TranscriptionProcessor } from './transcription.processor.js';
import { TranscriptionQueue } from './transcription.queue.js';
import { TranscriptionRunner } from './transcription-runner.service.js';
import { ChunkQueues, ChunkWorkers } from './chunk-queues.js';
import { MetricsCollectors } from './metrics-collectors.js';
import { JobCancellation } from './cancellation.js';
import { MaintenanceProcessor, RetentionSweeper } from './retention.processor.js';
import { TranscriptEntity } from '../transcripts/transcript.entity.js';
import { WebhooksModule } from '../webhooks/webhooks.module.js';
import { IdempotencyModule } from '../idempotency/idempotency.module.js';

/**
 * Job lifecycle: submission, queueing, workers, status, SSE. Depends on engines, storage,
 * transcripts and audio — never the other way round. The EnginesModule instance is passed in by
 * the root module so api and worker roles share one registry.
 */
@Module({})
export class JobsModule {
  static register(options: { api: boolean; worker: boolean; engines: DynamicModule }): DynamicModule {
    const providers: Provider[] = [TranscriptionQueue, ChunkQueues, JobCancellation];
    const controllers = [];
    const imports = [
      options.engines,
      AudioModule,
      TranscriptsModule,
      TypeOrmModule.forFeature([TranscriptJobEntity]),
      BullModule.registerQueue({ name: QueueName.Transcription }, { name: QueueName.Maintenance }),
      TypeOrmModule.forFeature([TranscriptEntity]),
      // Both roles: the API checks callback URLs, workers enqueue and deliver webhooks.
      WebhooksModule.register({ worker: options.worker }),
    ];
    if (options.api) {
      imports.push(ContextsModule, IdempotencyModule);
      providers.push(JobsService, JobEventsService, MetricsCollectors, { provide: APP_FILTER, useClass: ApiErrorFilter });
      controllers.push(JobsController);
      imports.push(
        MulterModule.registerAsync({
          inject: [AppConfig, TempWorkspaceService],
          // Uploads stream to disk (never whole in memory); multer aborts past MAX_FILE_SIZE with 413.
          useFactory: (config: AppConfig, temp: TempWorkspaceService) => ({
            storage: diskStorage({ destination: temp.uploadsDir }),
            // Browsers send UTF-8 file names without a charset parameter; busboy's default is latin1.
            defParamCharset: 'utf8',
            limits: { fileSize: config.MAX_FILE_SIZE, files: 1, fields: 32, fieldSize: 64 * 1024 },
          }),
        }),
      );
    }
    if (options.worker) providers.push(ChunkWorkers, TranscriptionRunner, TranscriptionProcessor, RetentionSweeper, MaintenanceProcessor);
    return { module: JobsModule, imports, providers, controllers, exports: [TranscriptionQueue, ...(options.api ? [JobsService, JobEventsService] : [])] };
  }
}
