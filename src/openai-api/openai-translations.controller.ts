import { All, Body, Controller, HttpCode, HttpStatus, Post, Req, Res, UploadedFile, UseFilters, UseInterceptors } from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import { ApiBody, ApiConsumes, ApiExcludeEndpoint, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ApiKeyLabel } from '../auth/api-key.guard.js';
import { SubmitRateLimit } from '../auth/throttle.js';
import type { UploadedAudio } from '../jobs/submission.service.js';
import { TranslationRequestDto } from './dto/translation-request.dto.js';
import { answerWhenDone, asciiJson, JOB_ID_HEADER, methodNotAllowed, WARNINGS_HEADER } from './openai-api.controller.js';
import { OpenAiApiService } from './openai-api.service.js';
import { OpenAiErrorFilter } from './openai-error.filter.js';
import { OpenAiTranslationsService } from './openai-translations.service.js';
import { toTranslationJson, toTranslationVerboseJson, type TranslationJson, type TranslationVerboseJson } from './translation-responses.js';


/**
 * OpenAI's `POST /v1/audio/translations` (speech in any language → English text) in front of the
 * engines that can translate. A translation is an ordinary gateway job with `task=translate` that
 * the request waits for, as `/v1/audio/transcriptions` does. Errors in OpenAI's shape.
 */
@ApiTags('openai-compatible')
@Controller('v1')
@UseFilters(OpenAiErrorFilter)
export class OpenAiTranslationsController {
  constructor(
    private readonly translations: OpenAiTranslationsService,
    private readonly api: OpenAiApiService,
  ) {}

  /**
   * `POST /v1/audio/translations` (multipart): `file`, `model`, `prompt`, `response_format`
   * (json | text | srt | vtt | verbose_json), `temperature` (ignored), and the gateway's
   * `vad_filter`.
   *
   * Answers once the job has ended: json `{text}`; text/srt/vtt as text; verbose_json
   * `{task: "translate", language: "english", duration, text, segments}` (seconds). Every answer
   * after submission carries `x-transcription-job-id`.
   *
   * Errors: 400 bad or unknown field (`language`, `timestamp_granularities[]` and `stream` are not
   * translation fields) / missing file / bad audio / a model whose engine cannot translate (the
   * message names those that can); 404 unknown model; 413 over MAX_FILE_SIZE; 500 the job failed;
   * 504 still running after OPENAI_API_WAIT_TIMEOUT_MS (the job continues).
   */
  @ApiOperation({ summary: 'OpenAI translation API: speech in any language to English text', description: 'Fields as OpenAI: file, model (an engine that can translate, engine:model, or whisper-1), prompt, response_format json|text|srt|vtt|verbose_json, temperature (ignored). Errors in OpenAI shape {error: {message, type, param, code}}. See docs/openai-api.md.' })
  @ApiConsumes('multipart/form-data')
  @ApiBody({ schema: { type: 'object', required: ['file', 'model'], properties: {
    file: { type: 'string', format: 'binary' }, model: { type: 'string', example: 'whisper-rocm' }, prompt: { type: 'string' },
    response_format: { type: 'string', enum: ['json', 'text', 'srt', 'vtt', 'verbose_json'] }, temperature: { type: 'number', minimum: 0, maximum: 1 },
  } } })
  @Post('audio/translations')
  @HttpCode(HttpStatus.OK)
  @SubmitRateLimit()
  @UseInterceptors(FileInterceptor('file'))
  async translate(
    @UploadedFile() file: UploadedAudio | undefined,
    @Body() dto: TranslationRequestDto,
    @ApiKeyLabel() keyLabel: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<TranslationJson | TranslationVerboseJson | string | undefined> {
    const plan = this.translations.plan(dto);
    const jobId = await this.translations.submit(file, dto, plan, keyLabel);
    res.setHeader(JOB_ID_HEADER, jobId);
    if (plan.warnings.length > 0) res.setHeader(WARNINGS_HEADER, asciiJson(plan.warnings));

    return answerWhenDone(this.api, jobId, req, res, plan, { json: toTranslationJson, verbose_json: toTranslationVerboseJson });
  }

  // After the POST route: Express tries routes in order, so this sees only the other methods.
  /** Any other method on `/v1/audio/translations`: 405 `method_not_allowed`, `Allow: POST`. */
  @ApiExcludeEndpoint()
  @All('audio/translations')
  translationsMethodNotAllowed(@Req() req: Request): never {
    throw methodNotAllowed(req, 'POST');
  }
}
