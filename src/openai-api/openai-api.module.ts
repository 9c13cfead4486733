import { Module, type DynamicModule } from '@nestjs/common';
import { MulterModule } from '@nestjs/platform-express';
import { diskStorage } from 'multer';
import { PREFIXED_ERROR_FILTERS, type PrefixedErrorFilter } from '../common/api-error.filter.js';
import { AppConfig } from '../config/app-config.js';
import { TempWorkspaceService } from '../storage/temp-workspace.service.js';
import { OpenAiApiController } from './openai-api.controller.js';
import { OpenAiApiService } from './openai-api.service.js';
import { OpenAiErrorFilter } from './openai-error.filter.js';
import { OpenAiTranslationsController } from './openai-translations.controller.js';
import { OpenAiTranslationsService } from './openai-translations.service.js';

/**
 * OpenAI's speech-to-text API under `/v1` (`POST /v1/audio/transcriptions`,
 * `POST /v1/audio/translations`, `GET /v1/models`), built on the jobs module's public services
 * only. API role only. Exports PREFIXED_ERROR_FILTERS, so that the global ApiErrorFilter answers
 * every other error under `/v1` in OpenAI's shape.
 */
@Module({})
export class OpenAiApiModule {
  /**
   * @param jobs the JobsModule instance of the root module, (it exports SubmissionService,
   *   JobQueryService and JobStreamService), so submissions share its queue and workers.
   * @param engines the EnginesModule instance of the root module (EngineRegistry).
   */
  static register(jobs: DynamicModule, engines: DynamicModule): DynamicModule {
    return {
      module: OpenAiApiModule,
      imports: [
        jobs,
        engines,
        MulterModule.registerAsync({
          inject: [AppConfig, TempWorkspaceService],
          // The same upload handling as the job API: streamed to TEMP_DIR/uploads, never whole in
          // memory; multer aborts past MAX_FILE_SIZE with 413.
          useFactory: (config: AppConfig, temp: TempWorkspaceService) => ({
            storage: diskStorage({ destination: temp.uploadsDir }),
            limits: { fileSize: config.MAX_FILE_SIZE, files: 1, fields: 32, fieldSize: 64 * 1024 },
          }),
        }),
      ],
      controllers: [OpenAiApiController, OpenAiTranslationsController],
      providers: [
        OpenAiApiService,
        OpenAiTranslationsService,
        OpenAiErrorFilter,
        // Errors under /v1 that no controller of this module raised (unknown routes, body parsing)
        // are answered in OpenAI's shape too, by the global filter handing them over.
        {
          provide: PREFIXED_ERROR_FILTERS,
          useFactory: (filter: OpenAiErrorFilter): PrefixedErrorFilter[] => [{ prefix: '/v1', filter }],
          inject: [OpenAiErrorFilter],
        },
      ],
      exports: [PREFIXED_ERROR_FILTERS],
    };
  }
}
