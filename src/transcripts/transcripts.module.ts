import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { TranscriptEntity } from './transcript.entity.js';
import { TranscriptsService } from './transcripts.service.js';

/** Transcript persistence. */
@Module({
  imports: [TypeOrmModule.forFeature([TranscriptEntity])],
  providers: [TranscriptsService],
  exports: [TranscriptsService],
})
export class TranscriptsModule {}
