import type { Server } from 'node:http';
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { ModulesContainer, NestFactory, Reflector } from '@nestjs/core';
import { ApiBearerAuth, ApiSecurity, DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { ConfigValidationError, parseEnv, AppConfig } from './config/app-config.js';
import { IS_PUBLIC } from './auth/api-key.guard.js';
import { corsOptions } from './auth/cors.js';
import { uploadIdleTimeout } from './common/upload-idle-timeout.js';
import { buildEngines } from './engines/engines.module.js';
import { createValidationPipe } from './common/request-validation.js';
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
  // Every validation failure is one 400 VALIDATION_FAILED whose message is one string.
  app.useGlobalPipes(createValidationPipe());
  if (config.APP_ROLE !== 'worker') setupOpenApi(app);
  return app;
}

/** Names of the two security schemes in the OpenAPI document: `Authorization: Bearer <key>` and `x-api-key: <key>`. */
export const OPENAPI_SECURITY_SCHEMES = { bearer: 'bearer', apiKey: 'x-api-key' } as const;

/**
 * Marks every controller that ApiKeyGuard protects (not `@Public()`) with both security schemes,
 * so each of its operations in the document declares `security: [{bearer: []}, {x-api-key: []}]`
 * (either one) and Swagger UI's "Authorize" sends the key with Try-it-out. Read from the same
 * `@Public()` metadata as the guard, so documentation and access control cannot disagree.
 * Public controllers (health, metrics) declare none; /docs and /docs-json are not controllers.
 */
const securedControllers = new WeakSet<object>();
function declareSecurity(app: INestApplication): void {
  const reflector = app.get(Reflector);
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype;
      if (typeof controller !== 'function' || reflector.get<boolean | undefined>(IS_PUBLIC, controller) === true) continue;
      // Decorators add to the class's metadata: once per class, however many apps a process builds (tests).
      if (securedControllers.has(controller)) continue;
      securedControllers.add(controller);
      ApiBearerAuth(OPENAPI_SECURITY_SCHEMES.bearer)(controller);
      ApiSecurity(OPENAPI_SECURITY_SCHEMES.apiKey)(controller);
    }
  }
}

/**
 * OpenAPI: Swagger UI at /docs, the JSON document at /docs-json (both public: they describe the
 * API and hold no data). Built from the controllers' and DTOs' decorators, so it cannot drift
 * from the routes; operations behind an API key declare the key's two schemes (declareSecurity).
 */
function setupOpenApi(app: INestApplication): void {
  declareSecurity(app);
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Transcription gateway')
      .setDescription(
        'One API in front of self-hosted speech recognition engines (pocketsphinx, Whisper on ROCm, WhisperX, NVIDIA Riva, OpenAI-compatible servers). ' +
          'Submit audio or video, follow progress over Server-Sent Events, get one normalized transcript. All times are float seconds.',
      )
      .setVersion(process.env.npm_package_version ?? '0.1.0')
      // The keys are opaque strings (API_KEYS / ASR_TOKEN), not JWTs: no bearerFormat.
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: undefined, description: 'An API key (API_KEYS / ASR_TOKEN) as Authorization: Bearer <key>' }, OPENAPI_SECURITY_SCHEMES.bearer)
      .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key', description: 'The same API key as an x-api-key header' }, OPENAPI_SECURITY_SCHEMES.apiKey)
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
