import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { ContextEntity } from './context.entity.js';
import {
  DEFAULT_BOOST,
  toContextView,
  type ContextListView,
  type ContextView,
  type CreateContextDto,
  type PhraseDto,
  type UpdateContextDto,
} from './contexts.dto.js';
import { ContextNotFoundError } from './contexts.errors.js';

export { toWordBoosts, type ContextView } from './contexts.dto.js';
export { ContextNotFoundError } from './contexts.errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Splits validated phrases into the two aligned columns. */
function columns(phrases: PhraseDto[]): Pick<ContextEntity, 'phrases' | 'phraseBoosts'> {
  return { phrases: phrases.map((p) => p.phrase), phraseBoosts: phrases.map((p) => p.boost ?? null) };
}

/**
 * Word-boosting contexts: named phrase lists with boosts, stored in `contexts`. Job submission
 * resolves a `context_id` with get() and turns it into TranscribeOptions.word_boosts with
 * toWordBoosts().
 */
@Injectable()
export class ContextsService {
  constructor(@InjectRepository(ContextEntity) private readonly contexts: Repository<ContextEntity>) {}

  private async find(id: string): Promise<ContextEntity> {
    // A malformed id cannot exist; checking here keeps Postgres' uuid cast error out of callers.
    const entity = UUID.test(id) ? await this.contexts.findOneBy({ id }) : null;
    if (!entity) throw new ContextNotFoundError(id);
    return entity;
  }

  /** @throws ContextNotFoundError */
  async get(id: string): Promise<ContextView> {
    return toContextView(await this.find(id));
  }

  /** Newest first. */
  async list(page: { limit?: number; offset?: number } = {}): Promise<ContextListView> {
    const limit = page.limit ?? 50;
    const offset = page.offset ?? 0;
    const [items, total] = await this.contexts.findAndCount({ order: { createdAt: 'DESC', id: 'ASC' }, take: limit, skip: offset });
    return { items: items.map(toContextView), total, limit, offset };
  }

  async create(dto: CreateContextDto): Promise<ContextView> {
    const entity = this.contexts.create({ name: dto.name, language: dto.language ?? null, boost: dto.boost ?? DEFAULT_BOOST, ...columns(dto.phrases) });
    return toContextView(await this.contexts.save(entity));
  }

  /** Replaces every field (PUT). @throws ContextNotFoundError */
  async replace(id: string, dto: CreateContextDto): Promise<ContextView> {
    const entity = await this.find(id);
    Object.assign(entity, { name: dto.name, language: dto.language ?? null, boost: dto.boost ?? DEFAULT_BOOST, ...columns(dto.phrases) });
    return toContextView(await this.contexts.save(entity));
  }

  /** Changes the given fields only (PATCH); `language: null` clears the language. @throws ContextNotFoundError */
  async update(id: string, dto: UpdateContextDto): Promise<ContextView> {
    const entity = await this.find(id);
    if (dto.name !== undefined) entity.name = dto.name;
    if (dto.language !== undefined) entity.language = dto.language;
    if (dto.boost !== undefined) entity.boost = dto.boost;
    if (dto.phrases !== undefined) Object.assign(entity, columns(dto.phrases));
    return toContextView(await this.contexts.save(entity));
  }

  /** @throws ContextNotFoundError */
  async delete(id: string): Promise<void> {
    const entity = await this.find(id);
    await this.contexts.remove(entity);
  }
}
