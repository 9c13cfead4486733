import { BullModule } from '@nestjs/bullmq';
import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { WebhookDeliverer } from './webhook-deliverer.service.js';
import { WebhookDeliveryEntity } from './webhook-delivery.entity.js';
import { WebhookQueueName } from './webhook.constants.js';
import { WebhookProcessor } from './webhook.processor.js';
import { WebhookQueue } from './webhook.queue.js';
import { WebhookSender } from './webhook.sender.js';
import { WebhookService } from './webhook.service.js';
import { TranscriptionWebhooksListener } from './transcription-webhooks.listener.js';

/**
 * Signed completion/failure webhooks (docs/webhooks.md). Every role gets WebhookService (checking
 * callback URLs at submission, enqueueing deliveries); the worker role also runs the `webhooks`
 * queue's processor. Webhooks are queued on the pipeline's lifecycle events
 * (TranscriptionWebhooksListener); the pipeline never calls this module. WebhookDeliveryEntity must be listed in ENTITIES (src/database/data-source.ts).
 */
@Module({})
export class WebhooksModule {
  static register(options: { worker: boolean }): DynamicModule {
    const providers: Provider[] = [WebhookQueue, WebhookService, TranscriptionWebhooksListener];
    if (options.worker) providers.push(WebhookSender, WebhookDeliverer, WebhookProcessor);
    return {
      module: WebhooksModule,
      imports: [TypeOrmModule.forFeature([WebhookDeliveryEntity]), BullModule.registerQueue({ name: WebhookQueueName.Webhooks })],
      providers,
      exports: [WebhookService],
    };
  }
}
