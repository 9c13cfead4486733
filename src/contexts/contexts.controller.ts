import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  ParseUUIDPipe,
  Patch,
  Post,
  Put,
  Query,
} from '@nestjs/common';
import { ApiExtraModels, ApiTags } from '@nestjs/swagger';
import { PhraseDto, CreateContextDto, ListContextsQuery, UpdateContextDto, type ContextListView, type ContextView } from './contexts.dto.js';
import { ContextsService } from './contexts.service.js';

/** `id` path parameter: a UUID (400 otherwise). */
const ContextId = () => Param('id', new ParseUUIDPipe({ exceptionFactory: () => new BadRequestException('id must be a UUID (as returned by POST /api/transcribe/contexts)') }));

/**
 * Word-boosting contexts under `/api/transcribe/contexts`. A context is a named list of phrases
 * with boosts (-100..100; positive favours, negative suppresses); a job names one with
 * `context_id` and engines that can boost (Riva) receive it as word boosts.
 *
 * Errors: 400 `VALIDATION_FAILED` (message lists every problem) or bad id; 404 `CONTEXT_NOT_FOUND`.
 * ContextError is a GatewayError, answered by the API role's global ApiErrorFilter (bound in
 * JobsModule, which imports this module only for the API role).
 */
@ApiTags('contexts')
@ApiExtraModels(PhraseDto)
@Controller('api/transcribe/contexts')
export class ContextsController {
  constructor(private readonly contexts: ContextsService) {}

  /** Creates a context. 201 with the stored context. */
  @Post()
  @HttpCode(HttpStatus.CREATED)
  create(@Body() dto: CreateContextDto): Promise<ContextView> {
    return this.contexts.create(dto);
  }

  /** Lists contexts, newest first: `{items, total, limit, offset}` (`?limit=1..200`, default 50; `?offset=`, default 0). */
  @Get()
  list(@Query() query: ListContextsQuery): Promise<ContextListView> {
    return this.contexts.list(query);
  }

  /** One context. 404 unknown id. */
  @Get(':id')
  get(@ContextId() id: string): Promise<ContextView> {
    return this.contexts.get(id);
  }

  /** Replaces a context (same body as POST). 404 unknown id. */
  @Put(':id')
  replace(@ContextId() id: string, @Body() dto: CreateContextDto): Promise<ContextView> {
    return this.contexts.replace(id, dto);
  }

  /** Changes some fields of a context. 404 unknown id. */
  @Patch(':id')
  update(@ContextId() id: string, @Body() dto: UpdateContextDto): Promise<ContextView> {
    return this.contexts.update(id, dto);
  }

  /** Deletes a context. 204; 404 unknown id. Jobs already queued keep the word boosts they were given. */
  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  delete(@ContextId() id: string): Promise<void> {
    return this.contexts.delete(id);
  }
}
