import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ContextEntity } from './context.entity.js';
import { ContextsController } from './contexts.controller.js';
import { ContextsService } from './contexts.service.js';

/**
 * Word-boosting contexts: the `/api/transcribe/contexts` CRUD API and ContextsService, which job
 * submission uses to resolve `context_id`. Depends only on the database: jobs use contexts,
 * never the other way round. ContextEntity must be listed in ENTITIES (src/database/data-source.ts).
 */
@Module({
  imports: [TypeOrmModule.forFeature([ContextEntity])],
  controllers: [ContextsController],
  providers: [ContextsService],
  exports: [ContextsService],
})
export class ContextsModule {}
