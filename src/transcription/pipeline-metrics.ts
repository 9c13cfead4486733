import { Injectable, Optional, type OnModuleInit } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { EngineHealthService } from '../engines/engine-health.service.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { chunkQueueName, QueueName } from './job-catalog.js';
import { ChunkQueues } from './long-audio/chunk-queues.js';
import { TranscriptionEvent, type JobCancelledEvent, type JobCompletedEvent, type JobFailedEvent, type JobSubmittedEvent } from './transcription.events.js';
import { QueueBacklog } from './queue-backlog.js';
import { TranscriptionQueue } from './transcription.queue.js';

/**
 * What the metrics module learns from the pipeline. The metrics module knows nothing of queues,
 * jobs or engines: this subscriber counts lifecycle events (submitted, completed, failed,
 * cancelled) and, where health probes run (API role), feeds the scrape-time gauges — queue depth
 * of the transcription queue and of every engine's chunk queue, what waits there per engine and
 * API key (QueueBacklog), and each engine's availability.
 */
@Injectable()
export class PipelineMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly queue: TranscriptionQueue,
    private readonly chunks: ChunkQueues,
    private readonly registry: EngineRegistry,
    private readonly backlog: QueueBacklog,
    @Optional() private readonly health?: EngineHealthService,
  ) {}

  onModuleInit(): void {
    if (!this.health) return;
    const health = this.health;
    this.metrics.setQueueDepthCollector(() => this.queue.counts(), QueueName.Transcription);
    for (const engine of this.registry.all()) {
      this.metrics.setQueueDepthCollector(() => this.chunks.counts(engine.id), chunkQueueName(engine.id));
    }
    this.metrics.setBacklogCollector(async () => (await this.backlog.rows()).rows.map((r) => ({ queue: r.queue, engine: r.engine, api_key: r.key, waiting: r.waiting, oldest_wait_sec: r.oldest_wait_sec })));
    this.metrics.setEngineHealthCollector(() => Object.fromEntries(this.registry.all().map((e) => [e.id, health.state(e.id).available])));
  }

  @OnEvent(TranscriptionEvent.Submitted)
  onSubmitted(event: JobSubmittedEvent): void {
    this.metrics.jobSubmitted(event.engine);
  }

  @OnEvent(TranscriptionEvent.Completed)
  onCompleted(event: JobCompletedEvent): void {
    if (event.replayed) return;
    this.metrics.jobFinished({ engine: event.engine, status: 'completed', durationSec: event.processingSec, audioSec: event.durationSec, processingSec: event.processingSec, keyLabel: event.keyLabel });
  }

  @OnEvent(TranscriptionEvent.Failed)
  onFailed(event: JobFailedEvent): void {
    this.metrics.jobFinished({ engine: event.engine, status: 'failed', durationSec: -1, audioSec: 0, processingSec: 0, keyLabel: event.keyLabel });
  }

  @OnEvent(TranscriptionEvent.Cancelled)
  onCancelled(event: JobCancelledEvent): void {
    this.metrics.jobFinished({ engine: event.engine, status: 'failed', durationSec: -1, audioSec: 0, processingSec: 0 });
  }
}
