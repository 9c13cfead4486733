import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import { redisConnection } from '../common/redis.js';
import { AppConfig } from '../config/app-config.js';

/** A cancellation request: the job and how many pieces (chunk jobs) it has. */
export interface CancelRequest {
  jobId: string;
  pieces: number;
}

/**
 * Cross-process job cancellation over Redis pub/sub: the API publishes, every worker process
 * subscribes and aborts the job (and its chunk jobs) if it is running it — BullMQ's cancelJob
 * only reaches jobs of the worker it is called on.
 */
@Injectable()
export class JobCancellation implements OnModuleDestroy {
  private readonly logger = new Logger(JobCancellation.name);
  private publisher: Redis | undefined;
  private subscriber: Redis | undefined;
  private readonly handlers: ((request: CancelRequest) => void)[] = [];

  constructor(private readonly config: AppConfig) {}

  private get channel(): string {
    return `${this.config.QUEUE_PREFIX}:cancel`;
  }

  async publish(request: CancelRequest): Promise<void> {
    this.publisher ??= new Redis(redisConnection(this.config.REDIS_URL));
    await this.publisher.publish(this.channel, JSON.stringify(request));
  }

  /**
   * Calls `handler` for every cancellation published by any process. One Redis subscription per
   * process, shared by every handler (the transcription processor and each chunk processor).
   */
  async subscribe(handler: (request: CancelRequest) => void): Promise<void> {
    this.handlers.push(handler);
    if (this.subscriber) return;
    this.subscriber = new Redis(redisConnection(this.config.REDIS_URL));
    this.subscriber.on('message', (_channel: string, message: string) => {
      let request: CancelRequest;
      try {
        request = JSON.parse(message) as CancelRequest;
      } catch (err) {
        this.logger.warn(`ignored a malformed cancel message: ${String(err)}`);
        return;
      }
      for (const h of this.handlers) h(request);
    });
    await this.subscriber.subscribe(this.channel);
  }

  onModuleDestroy(): void {
    this.publisher?.disconnect();
    this.subscriber?.disconnect();
  }
}
