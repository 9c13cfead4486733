import { BullModule } from '@nestjs/bullmq';
import { Module, type DynamicModule } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { TranscriptEntity } from '../transcripts/transcript.entity.js';
import { QueueName } from '../transcription/job-catalog.js';
import { MaintenanceProcessor, RetentionSweeper } from './retention.processor.js';

/**
 * Audio retention (worker role): a repeatable job on the maintenance queue deletes the audio of
 * finished jobs after AUDIO_RETENTION_HOURS; transcripts are kept (docs/storage.md).
 */
@Module({})
export class RetentionModule {
  static register(): DynamicModule {
    return {
      module: RetentionModule,
      imports: [TypeOrmModule.forFeature([TranscriptEntity]), BullModule.registerQueue({ name: QueueName.Maintenance })],
      providers: [RetentionSweeper, MaintenanceProcessor],
      exports: [RetentionSweeper],
    };
  }
}
