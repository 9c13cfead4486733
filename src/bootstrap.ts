import 'reflect-metadata';
import { ValidationPipe, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { ConfigValidationError, corsOrigins, parseEnv, AppConfig } from './config/app-config.js';
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
  const origins = corsOrigins(config);
  if (origins !== false) app.enableCors({ origin: origins });
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      validationError: { target: false, value: false },
    }),
  );
  return app;
}
