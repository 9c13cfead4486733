import { ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/api-key.guard.js';
import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { MetricsService } from './metrics.service.js';

/**
 * `GET /metrics`: the gateway's metrics in Prometheus text format 0.0.4
 * (`text/plain; version=0.0.4; charset=utf-8`), for a Prometheus scrape. The metric list is in
 * MetricsService. Queue depth and engine availability are read during the scrape from cached or
 * cheap sources; a failing source leaves its gauge empty instead of failing the scrape.
 */
@ApiTags('operations')
@Public()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  async scrape(@Res({ passthrough: true }) res: Response): Promise<string> {
    const body = await this.metrics.scrape();
    res.setHeader('Content-Type', this.metrics.contentType);
    return body;
  }
}
