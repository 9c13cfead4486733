import { Module, type DynamicModule } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyGuard } from './api-key.guard.js';
import { ApiKeys } from './api-keys.js';
import { RateLimitGuard, SlidingWindowLimiter } from './throttle.js';

/**
 * Access control of the HTTP API: API keys (ApiKeyGuard) and per-key rate limits
 * (RateLimitGuard), both as global guards, so every route of every module is covered unless it
 * is marked `@Public()`. Import it in the API role only. Needs AppConfig (ConfigModule).
 *
 * The two guards identify a request independently (through ApiKeys), so their order does not
 * change any answer; API keys are listed first so a request without a valid key is answered
 * 401/403 and never counted.
 */
@Module({})
export class AuthModule {
  /** A fresh module: each application instance gets its own rate-limit counts. */
  static register(): DynamicModule {
    return {
      module: AuthModule,
      providers: [
        ApiKeys,
        { provide: SlidingWindowLimiter, useFactory: () => new SlidingWindowLimiter() },
        ApiKeyGuard,
        RateLimitGuard,
        { provide: APP_GUARD, useExisting: ApiKeyGuard },
        { provide: APP_GUARD, useExisting: RateLimitGuard },
      ],
      exports: [ApiKeys],
    };
  }
}
