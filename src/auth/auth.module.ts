import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyGuard } from './api-key.guard.js';
import { ApiKeys } from './api-keys.js';
import { AppConfig } from '../config/app-config.js';
import { RateLimitGuard, SharedRateLimiter } from './throttle.js';

/**
 * Access control of the HTTP API: API keys (ApiKeyGuard) and per-key rate limits
 * (RateLimitGuard), both as global guards, so every route of every module is covered unless it
 * is marked `@Public()`. Import it in the API role only. Needs AppConfig (ConfigModule); the rate
 * limits are counted in REDIS_URL under QUEUE_PREFIX, shared by every API process.
 *
 * The two guards identify a request independently (through ApiKeys), so their order does not
 * change any answer; API keys are listed first so a request without a valid key is answered
 * 401/403 and never counted.
 */
@Module({})
export class AuthModule {
  /** A fresh module: each application instance opens its own Redis connection for the rate-limit counts. */
  static register(): DynamicModule {
    return {
      module: AuthModule,
      providers: [
        ApiKeys,
        {
          provide: SharedRateLimiter,
          useFactory: (config: AppConfig) => new SharedRateLimiter({ redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX }),
          inject: [AppConfig],
        },
        ApiKeyGuard,
        RateLimitGuard,
        { provide: APP_GUARD, useExisting: ApiKeyGuard },
        { provide: APP_GUARD, useExisting: RateLimitGuard },
      ],
      exports: [ApiKeys],
    };
  }
}
