import { Global, Module, type DynamicModule } from '@nestjs/common';
import { MetricsController } from './metrics.controller.js';
import { MetricsService } from './metrics.service.js';

/**
 * Prometheus metrics. Global, because jobs and engines report to it from anywhere; it imports
 * neither of them (they push events in and hand it scrape-time collectors), so dependencies still
 * point one way.
 */
@Global()
@Module({})
export class MetricsModule {
  /**
   * @param options.http serve `GET /metrics` from this process (default true). A process without
   *   an HTTP listener can still record metrics; they are only visible where they are served.
   */
  static register(options: { http?: boolean } = {}): DynamicModule {
    return {
      module: MetricsModule,
      providers: [MetricsService],
      controllers: options.http === false ? [] : [MetricsController],
      exports: [MetricsService],
    };
  }
}
