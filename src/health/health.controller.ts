import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator, type HealthCheckResult } from '@nestjs/terminus';
import { TranscriptionQueue } from '../jobs/transcription.queue.js';

/** `GET /health`: Postgres and Redis reachable (200), or 503 with which one is down. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly queue: TranscriptionQueue,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.db.pingCheck('postgres', { timeout: 3000 }),
      async () => {
        const redis = this.indicators.check('redis');
        try {
          await this.queue.ping();
          return redis.up();
        } catch (err) {
          return redis.down({ message: err instanceof Error ? err.message : String(err) });
        }
      },
    ]);
  }
}
