import { BullModule } from '@nestjs/bullmq';
import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AudioModule } from '../audio/audio.module.js';
import type { AppConfig } from '../config/app-config.js';
import type { TranscriptionEngine } from '../engines/engine.spec.js';
import { TranscriptsModule } from '../transcripts/transcripts.module.js';
import { JobCancellation } from './cancellation.js';
import { boundProcessor } from './catalog-worker-host.js';
import { EngineFallbacks } from './engine-fallbacks.js';
import { FairScheduler } from './fair-scheduling.js';
import { JobCatalogCheck } from './job-catalog.check.js';
import { chunkQueueName, QueueName } from './job-catalog.js';
import { JobControl } from './job-control.js';
import { JobLifecycle } from './job-lifecycle.service.js';
import { JobRepository } from './job.repository.js';
import { JobSubmitter } from './job-submitter.js';
import { ChunkProcessor } from './long-audio/chunk.processor.js';
import { ChunkQueues } from './long-audio/chunk-queues.js';
import { LongAudioPipeline } from './long-audio/long-audio.pipeline.js';
import { PipelineMetrics } from './pipeline-metrics.js';
import { QueueBacklog } from './queue-backlog.js';
import { QueueEventsBridge } from './queue-events.bridge.js';
import { QueuedAudioQuota } from './queued-audio-quota.js';
import { TranscriptJobEntity } from './transcript-job.entity.js';
import { TranscriptionEvents } from './transcription.events.js';
import { TranscriptionProcessor } from './transcription.processor.js';
import { TranscriptionQueue } from './transcription.queue.js';
import { TranscriptionService } from './transcription.service.js';

/**
 * The transcription pipeline: job rows and their state (JobRepository, JobLifecycle and its typed
 * events), the transcription queue and its processor, and the long-audio pipeline (split, one
 * chunk queue and processor per engine, merge). Depends on engines, audio, storage and
 * transcripts — never on the HTTP API, metrics' or webhooks' internals (they subscribe to
 * TranscriptionEvents).
 *
 * API role: JobSubmitter, JobControl, TranscriptionQueue and JobRepository for the job
 * endpoints, and QueueEventsBridge for SSE. Worker role: the processors, bound to their queues
 * with worker options from the validated config, and the boot check of the job catalog.
 */
@Module({})
export class TranscriptionModule {
  static register(options: { api: boolean; worker: boolean; engines: DynamicModule; engineList: TranscriptionEngine[]; config: AppConfig }): DynamicModule {
    const { config } = options;
    const chunkQueues = options.engineList.map((e) => ({ name: chunkQueueName(e.id) }));
    const providers: Provider[] = [
      TranscriptionEvents,
      TranscriptionQueue,
      ChunkQueues,
      JobCancellation,
      JobRepository,
      JobLifecycle,
      LongAudioPipeline,
      EngineFallbacks,
      PipelineMetrics,
      FairScheduler,
      QueuedAudioQuota,
      QueueBacklog,
    ];
    if (options.api) providers.push(JobSubmitter, JobControl, QueueEventsBridge);
    if (options.worker) {
      const workerOptions = {
        concurrency: config.WORKER_CONCURRENCY,
        lockDuration: config.WORKER_LOCK_DURATION_MS,
        stalledInterval: config.WORKER_STALLED_INTERVAL_MS,
        outageBackoffMs: Math.max(1000, config.JOB_BACKOFF_MS),
      };
      providers.push(
        TranscriptionService,
        JobCatalogCheck,
        boundProcessor(TranscriptionProcessor, QueueName.Transcription, workerOptions),
        ...options.engineList.map((e) => boundProcessor(ChunkProcessor, chunkQueueName(e.id), workerOptions)),
      );
    }
    return {
      module: TranscriptionModule,
      imports: [
        options.engines,
        AudioModule,
        TranscriptsModule,
        DiscoveryModule,
        TypeOrmModule.forFeature([TranscriptJobEntity]),
        BullModule.registerQueue({ name: QueueName.Transcription }, ...chunkQueues),
      ],
      providers,
      exports: [TranscriptionQueue, JobRepository, TranscriptionEvents, QueueBacklog, ...(options.api ? [JobSubmitter, JobControl] : [])],
    };
  }
}
