import { Module, type DynamicModule } from '@nestjs/common';
import { MulterModule } from '@nestjs/platform-express';
import { diskStorage } from 'multer';
import { AudioModule } from '../audio/audio.module.js';
import { AppConfig } from '../config/app-config.js';
import { ContextsModule } from '../contexts/contexts.module.js';
import { IdempotencyModule } from '../idempotency/idempotency.module.js';
import { TempWorkspaceService } from '../storage/temp-workspace.service.js';
import { DeletedJobs } from './deleted-jobs.js';
import { EnginesController } from './engines.controller.js';
import { JobQueryService } from './job-query.service.js';
import { JobStreamService } from './job-stream.service.js';
import { JobsController } from './jobs.controller.js';
import { SubmissionService } from './submission.service.js';
import { SubmitOptionsResolver } from './submit-options.js';

/**
 * The job API (API role): submission, status, SSE, results, audio, cancellation and the engine
 * list under `/api/transcribe/jobs`. Thin over the transcription pipeline, whose module instance
 * (registered with `api: true`) is passed in by the root module, as is the engines module.
 */
@Module({})
export class JobsModule {
  static register(options: { transcription: DynamicModule; engines: DynamicModule; webhooks: DynamicModule }): DynamicModule {
    return {
      module: JobsModule,
      imports: [
        options.transcription,
        options.engines,
        options.webhooks,
        AudioModule,
        ContextsModule,
        IdempotencyModule,
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
      ],
      controllers: [JobsController, EnginesController],
      providers: [SubmitOptionsResolver, SubmissionService, JobQueryService, JobStreamService, DeletedJobs],
      exports: [SubmissionService, JobQueryService, JobStreamService],
    };
  }
}
