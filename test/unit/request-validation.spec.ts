import 'reflect-metadata';
import { BadRequestException, type ArgumentMetadata } from '@nestjs/common';
import { CreateContextDto } from '../../src/contexts/contexts.dto.js';
import { createValidationPipe, RequestValidationError } from '../../src/common/request-validation.js';
import { SubmitJobDto } from '../../src/jobs/dto/submit-job.dto.js';
import { TranscriptionRequestDto } from '../../src/openai-api/dto/transcription-request.dto.js';
import { TranslationRequestDto } from '../../src/openai-api/dto/translation-request.dto.js';

/** The global ValidationPipe on a body of `dto`'s class: the RequestValidationError it raises. */
async function refusal(dto: new () => object, body: Record<string, unknown>): Promise<RequestValidationError> {
  const metadata: ArgumentMetadata = { type: 'body', metatype: dto };
  const error = await createValidationPipe().transform(body, metadata).then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(RequestValidationError);
  expect(error).not.toBeInstanceOf(BadRequestException);
  return error as RequestValidationError;
}

describe('createValidationPipe: one string message, one problem per field', () => {
  it('names an unknown field and the accepted ones; nested fields by their path', async () => {
    const unknown = await refusal(SubmitJobDto, { foo: '1' });
    expect(unknown.message).toMatch(/^unknown field 'foo'; accepted fields: .*\bengine\b.*\blanguage\b/);
    expect(unknown.toPublic()).toEqual({ code: 'VALIDATION_FAILED', message: unknown.message, errors: [{ field: 'foo', message: unknown.message }] });
    expect(unknown.status).toBe(400);
    const nested = await refusal(CreateContextDto, { name: 'n', phrases: [{ phrase: 'a', weight: 3 }] });
    expect(nested.message).toBe("unknown field 'phrases.0.weight'; accepted fields: boost, phrase");
  });

  it('picks the message that says what is wrong: missing, wrong type, or the rule with the DTO\'s own words', async () => {
    expect((await refusal(CreateContextDto, { phrases: ['a'] })).message).toBe('name is required; name must be 1 to 200 characters');
    expect((await refusal(CreateContextDto, { name: 'n', phrases: 'echo' })).message).toBe('phrases must be an array');
    expect((await refusal(CreateContextDto, { name: 'n', phrases: [] })).message).toBe('phrases must contain at least 1 phrase');
    expect((await refusal(CreateContextDto, { name: 'n', phrases: [{ phrase: 'a', boost: '5' }] })).message).toMatch(/^phrases\.0\.boost must be a number/);
    expect((await refusal(CreateContextDto, { name: 'n', phrases: [{ phrase: 'a', boost: -101 }] })).message).toBe('phrases.0.boost must not be less than -100');
    expect((await refusal(TranscriptionRequestDto, { model: 'x'.repeat(201) })).message).toMatch(/^model must be at most 200 characters/);
    expect((await refusal(TranscriptionRequestDto, { temperature: 'hot' })).message).toBe('temperature must be a number between 0 and 1');
  });

  it('joins several fields into one string, keeping each in errors', async () => {
    const error = await refusal(SubmitJobDto, { language: 'English!', min_speakers: 'two' });
    expect(error.message).toBe("language must be a language code such as 'en' or 'en-US'; min_speakers must be an integer between 1 and 20");
    expect(error.problems.map((p) => [p.field, p.kind])).toEqual([['language', 'invalid'], ['min_speakers', 'invalid']]);
  });

  it('refuses NUL characters in the text fields of both OpenAI routes, naming the field', async () => {
    for (const dto of [TranscriptionRequestDto, TranslationRequestDto]) {
      expect((await refusal(dto, { model: 'whisper-1', prompt: 'a\u0000b' })).message).toBe('prompt must not contain NUL characters (U+0000); send plain text');
      expect((await refusal(dto, { model: 'whisper\u00001' })).message).toBe('model must not contain NUL characters (U+0000); send plain text');
    }
  });
});
