import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { plainToInstance, Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import type { ContextEntity } from './context.entity.js';
import { NoNulCharacters } from '../jobs/dto/text-validators.js';

/**
 * Boost bounds. NVIDIA recommends boost scores of 20 to 100 for Riva word boosting, and uses
 * negative scores (down to -100) to suppress words ("Riva ASR NIM — Customization: Word Boosting",
 * docs.nvidia.com/nim/riva/asr/latest/customization.html; tutorial "How do I boost specific words
 * at runtime with word boosting?", nvidia-riva/tutorials asr-wordboosting.ipynb). SpeechContext.boost
 * is a float with no server-side bound, so these bounds are the gateway's, kept to the documented range.
 */
export const MIN_BOOST = -100;
export const MAX_BOOST = 100;
/** Context-wide boost when none is given: the low end of NVIDIA's recommended 20–100. */
export const DEFAULT_BOOST = 20;
export const MAX_PHRASES = 1000;
export const MAX_PHRASE_LENGTH = 200;

/** Same codes as job submission: ISO-639-1 (`en`) or BCP-47 (`en-US`). */
const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/;
const LANGUAGE_MESSAGE = "language must be a language code such as 'en' or 'en-US'";
const BOOST_NUMBER = { allowNaN: false, allowInfinity: false };

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

/** One phrase with an optional boost of its own. */
export class PhraseDto {
  /** 1–200 characters after trimming: a word or a short phrase as it is spoken. */
  @ApiProperty({ minLength: 1, maxLength: MAX_PHRASE_LENGTH, example: 'atrial fibrillation' })
  @Transform(trim)
  @IsString()
  @Length(1, MAX_PHRASE_LENGTH, { message: `phrase must be 1 to ${MAX_PHRASE_LENGTH} characters` })
  @NoNulCharacters()
  phrase: string;

  /** -100..100; absent = the context's `boost`. */
  @ApiPropertyOptional({ minimum: MIN_BOOST, maximum: MAX_BOOST, example: 60 })
  @IsOptional()
  @IsNumber(BOOST_NUMBER)
  @Min(MIN_BOOST)
  @Max(MAX_BOOST)
  boost?: number;
}

/** Turns each item of `phrases` (a string, or `{phrase, boost?}`) into a PhraseDto; anything else is left for validation to reject. */
const toPhrases = ({ value }: { value: unknown }) =>
  Array.isArray(value)
    ? value.map((item: unknown) =>
        typeof item === 'string'
          ? plainToInstance(PhraseDto, { phrase: item })
          : item !== null && typeof item === 'object' && !Array.isArray(item)
            ? plainToInstance(PhraseDto, item)
            : item,
      )
    : value;

const phraseKey = (p: unknown) => (p instanceof PhraseDto ? p.phrase : p);

/**
 * Body of `POST /api/transcribe/contexts` and `PUT /api/transcribe/contexts/:id`.
 *
 * Example: `{"name": "cardiology", "language": "en-US", "boost": 30,
 *   "phrases": ["echocardiogram", {"phrase": "atrial fibrillation", "boost": 60}]}`
 */
export class CreateContextDto {
  /** 1–200 characters. */
  @ApiProperty({ minLength: 1, maxLength: 200, example: 'cardiology' })
  @Transform(trim)
  @IsString()
  @Length(1, 200, { message: 'name must be 1 to 200 characters' })
  @NoNulCharacters()
  name: string;

  /** Language of the phrases: ISO-639-1 or BCP-47; absent = unspecified. */
  @ApiPropertyOptional({ example: 'en-US' })
  @IsOptional()
  @Matches(LANGUAGE, { message: LANGUAGE_MESSAGE })
  language?: string;

  /** Boost for phrases without their own, -100..100 (negative suppresses); default 20. */
  @ApiPropertyOptional({ minimum: MIN_BOOST, maximum: MAX_BOOST, default: 20 })
  @IsOptional()
  @IsNumber(BOOST_NUMBER)
  @Min(MIN_BOOST)
  @Max(MAX_BOOST)
  boost?: number;

  /** 1–1000 distinct phrases, each a string or `{phrase, boost?}`. */
  @ApiProperty({
    description: '1–1000 distinct phrases, each a string or {phrase, boost?}',
    type: 'array',
    items: { oneOf: [{ type: 'string' }, { $ref: '#/components/schemas/PhraseDto' }] },
    example: ['echocardiogram', { phrase: 'atrial fibrillation', boost: 60 }],
  })
  @Transform(toPhrases)
  @IsArray()
  @ArrayMinSize(1, { message: 'phrases must contain at least 1 phrase' })
  @ArrayMaxSize(MAX_PHRASES, { message: `phrases must contain at most ${MAX_PHRASES} phrases` })
  @ArrayUnique(phraseKey, { message: 'phrases must not repeat a phrase' })
  @ValidateNested({ each: true })
  phrases: PhraseDto[];
}

/** PATCH fields other than `language` may be left out but not set to null. */
const present = (_: object, value: unknown) => value !== undefined;

/** Body of `PATCH /api/transcribe/contexts/:id`: any subset of the fields; `language: null` clears it. */
export class UpdateContextDto {
  @ValidateIf(present)
  @Transform(trim)
  @IsString()
  @Length(1, 200, { message: 'name must be 1 to 200 characters' })
  @NoNulCharacters()
  name?: string;

  @IsOptional()
  @Matches(LANGUAGE, { message: LANGUAGE_MESSAGE })
  language?: string | null;

  @ValidateIf(present)
  @IsNumber(BOOST_NUMBER)
  @Min(MIN_BOOST)
  @Max(MAX_BOOST)
  boost?: number;

  @ValidateIf(present)
  @Transform(toPhrases)
  @IsArray()
  @ArrayMinSize(1, { message: 'phrases must contain at least 1 phrase' })
  @ArrayMaxSize(MAX_PHRASES, { message: `phrases must contain at most ${MAX_PHRASES} phrases` })
  @ArrayUnique(phraseKey, { message: 'phrases must not repeat a phrase' })
  @ValidateNested({ each: true })
  phrases?: PhraseDto[];
}

/** Query of `GET /api/transcribe/contexts`. */
export class ListContextsQuery {
  /** Page size, 1–200 (default 50). */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  /** Items to skip (default 0). */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  offset?: number;
}

/** A stored context as the API returns it. */
export interface ContextView {
  id: string;
  name: string;
  language: string | null;
  /** Context-wide boost. */
  boost: number;
  /** In the order given; `boost` null = the context-wide boost applies. */
  phrases: { phrase: string; boost: number | null }[];
  /** ISO 8601. */
  created_at: string;
  updated_at: string;
}

/** A page of contexts, newest first. */
export interface ContextListView {
  items: ContextView[];
  /** Contexts in total. */
  total: number;
  limit: number;
  offset: number;
}

/** Entity → API view (entities never reach the HTTP layer). */
export function toContextView(entity: ContextEntity): ContextView {
  return {
    id: entity.id,
    name: entity.name,
    language: entity.language,
    boost: entity.boost,
    phrases: entity.phrases.map((phrase, i) => ({ phrase, boost: entity.phraseBoosts[i] ?? null })),
    created_at: entity.createdAt.toISOString(),
    updated_at: entity.updatedAt.toISOString(),
  };
}

/**
 * A context as engines take it: one group per boost level (TranscribeOptions.word_boosts, which
 * the Riva adapter sends as one SpeechContext per group). Each phrase's own boost, or the
 * context's; groups in order of first appearance; a phrase appears at most once per group.
 */
export function toWordBoosts(context: Pick<ContextView, 'boost' | 'phrases'>): { phrases: string[]; boost: number }[] {
  const groups = new Map<number, string[]>();
  for (const { phrase, boost } of context.phrases) {
    const level = boost ?? context.boost;
    const group = groups.get(level) ?? [];
    if (!group.includes(phrase)) group.push(phrase);
    groups.set(level, group);
  }
  return [...groups].map(([boost, phrases]) => ({ phrases, boost }));
}
