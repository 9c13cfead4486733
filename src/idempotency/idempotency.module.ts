import { Module } from '@nestjs/common';
import { IdempotencyService } from './idempotency.service.js';

/**
 * `Idempotency-Key` support for the API role (docs/webhooks.md, "Idempotency-Key"): the jobs
 * controller wraps a submission in IdempotencyService.execute(). Depends only on the database
 * (the default TypeORM DataSource). IdempotencyKeyEntity must be listed in ENTITIES
 * (src/database/data-source.ts).
 */
@Module({
  providers: [IdempotencyService],
  exports: [IdempotencyService],
})
export class IdempotencyModule {}
