import type { Server } from 'node:http';
import 'reflect-metadata';
import { ValidationPipe, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { ConfigValidationError, parseEnv, AppConfig } from './config/app-config.js';
import { corsOptions } from './auth/cors.js';
import { uploadIdleTimeout } from './common/upload-idle-timeout.js';
import { buildEngines } from './engines/engines.module.js';
import { createPinoLogger, GatewayLogger, parseLogLevel } from './common/logger.js';
import type { TranscriptionEngine } from './engines/engine.spec.js';

/**
 * Validates the whole environment (core settings and every enabled engine's section) and
 * reports every problem in one error.
 *
 * @throws ConfigValidationError
 */
export function loadEnvironment(env: NodeJS.ProcessEnv = process.env): { config: AppConfig; engines: TranscriptionEngine[] } {
  const core = parseEnv(AppConfig, env);
  const { engines, problems } = buildEngines(env);
  const all = [...core.problems, ...problems];
  if (all.length > 0) throw new ConfigValidationError(all);
  return { config: core.value, engines };
}

/**
 * Builds the Nest application for a role. Used by main.ts and by the tests, so both run the
 * same wiring. `engines` lets tests register adapters pointed at their protocol test servers.
 */
export async function createApp(config: AppConfig, engines: TranscriptionEngine[]): Promise<INestApplication> {
  const { level } = parseLogLevel(process.env.LOG_LEVEL);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, engines), {
    // Structured JSON lines (pino) with job_id/engine fields where the code gives them; keys redacted.
    logger: level === 'silent' ? false : new GatewayLogger(createPinoLogger({ level, base: { role: config.APP_ROLE } })),
    abortOnError: false,
  });
  // Contexts carry up to 1000 phrases: JSON bodies up to 1 MiB (uploads are multipart, limited by MAX_FILE_SIZE).
  app.useBodyParser('json', { limit: '1mb' });
  app.enableShutdownHooks();
  // Idle keep-alive connections live 65 s (Node's default is 5 s): a client that reuses a
  // connection just as the server drops it gets ECONNRESET, and load balancers and clients that
  // pause between requests (polling, a player seeking) commonly keep connections for a minute.
  const server = app.getHttpAdapter().getHttpServer() as Server;
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // A stalled upload is dropped after UPLOAD_IDLE_TIMEOUT seconds without a byte (its temp file removed by multer).
  app.use(uploadIdleTimeout(config.UPLOAD_IDLE_TIMEOUT));
  const cors = corsOptions(config);
  if (cors !== false) app.enableCors(cors);
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      validationError: { target: false, value: false },
    }),
  );
  if (config.APP_ROLE !== 'worker') setupOpenApi(app);
  return app;
}

/**
 * OpenAPI: Swagger UI at /docs, the JSON document at /docs-json. Built from the controllers'
 * and DTOs' decorators, so it cannot drift from the routes.
 */
function setupOpenApi(app: INestApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Transcription gateway')
      .setDescription(
        'One API in front of self-hosted speech recognition engines (pocketsphinx, Whisper on ROCm, WhisperX, NVIDIA Riva, OpenAI-compatible servers). ' +
          'Submit audio or video, follow progress over Server-Sent Events, get one normalized transcript. All times are float seconds.',
      )
      .setVersion(process.env.npm_package_version ?? '0.1.0')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'API key (API_KEYS / ASR_TOKEN)' })
      .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key' }, 'x-api-key')
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
