import { Controller, Get, Inject } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/api-key.guard.js';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator, type HealthCheckResult } from '@nestjs/terminus';
import { TranscriptionQueue } from '../transcription/transcription.queue.js';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage.driver.js';

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Health over HTTP (terminus). Liveness says the process serves requests; readiness says it can
 * do its work: Postgres, Redis and storage reachable (503 naming what is down otherwise).
 */
@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly queue: TranscriptionQueue,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  /** `GET /health/live`: 200 while the process is up and its event loop answers (no dependency checked). */
  @Get('live')
  live(): { status: 'ok'; uptime_sec: number } {
    return { status: 'ok', uptime_sec: Math.round(process.uptime()) };
  }

  /** `GET /health/ready` (and `GET /health`): Postgres, Redis and storage reachable → 200; otherwise 503. */
  @Get(['ready', ''])
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.db.pingCheck('postgres', { timeout: 3000 }),
      async () => {
        const redis = this.indicators.check('redis');
        try {
          await this.queue.ping();
          return redis.up();
        } catch (err) {
          return redis.down({ message: errorText(err) });
        }
      },
      async () => {
        const storage = this.indicators.check('storage');
        try {
          await this.storage.ping();
          return storage.up({ driver: this.storage.name });
        } catch (err) {
          return storage.down({ driver: this.storage.name, message: errorText(err) });
        }
      },
    ]);
  }
}
