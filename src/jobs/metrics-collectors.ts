import { Injectable, type OnModuleInit } from '@nestjs/common';
import { EngineHealthService } from '../engines/engine-health.service.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ChunkQueues } from './chunk-queues.js';
import { QueueName } from './jobs.constants.js';
import { TranscriptionQueue } from './transcription.queue.js';

/**
 * Feeds the scrape-time gauges (API role): queue depth of the transcription queue and of every
 * engine's chunk queue, and each engine's cached availability. The metrics module knows nothing
 * of queues or engines; this is where jobs tells it how to read them.
 */
@Injectable()
export class MetricsCollectors implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly queue: TranscriptionQueue,
    private readonly chunks: ChunkQueues,
    private readonly registry: EngineRegistry,
    private readonly health: EngineHealthService,
  ) {}

  onModuleInit(): void {
    this.metrics.setQueueDepthCollector(() => this.queue.counts(), QueueName.Transcription);
    for (const engine of this.registry.all()) {
      this.metrics.setQueueDepthCollector(() => this.chunks.queue(engine.id).getJobCounts(), `chunks-${engine.id}`);
    }
    this.metrics.setEngineHealthCollector(() => Object.fromEntries(this.registry.all().map((e) => [e.id, this.health.state(e.id).available])));
  }
}
