import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ENGINE_TASKS } from '../../engines/engine.spec.js';
import { JOB_STAGES } from '../../transcription/job-catalog.js';
import { SubmitJobDto } from './submit-job.dto.js';

/*
 * OpenAPI schemas of the job API (served at /docs and /docs-json). The TypeScript shapes the
 * code uses are the interfaces in job-views.ts and engines/engine.spec.ts; these classes document
 * the same JSON for clients. All times are float seconds.
 */

export class SubmitJobForm extends SubmitJobDto {
  @ApiProperty({ type: 'string', format: 'binary', description: 'Audio or video file; any container/codec ffmpeg decodes, with at least one audio stream. At most MAX_FILE_SIZE bytes.' })
  file!: unknown;
}

export class SubmitJobResponseSchema {
  @ApiProperty({ format: 'uuid' }) job_id!: string;
  @ApiProperty({ format: 'uuid' }) transcript_id!: string;
  @ApiProperty({ example: 'pocketsphinx' }) engine!: string;
  @ApiProperty({ enum: ['queued'] }) status!: string;
  @ApiProperty({ example: 'queued for transcription by pocketsphinx (11.0 s of mp3 audio)' }) message!: string;
}

export class WordSchema {
  @ApiProperty({ example: 'country' }) word!: string;
  @ApiProperty({ description: 'seconds', example: 7.42 }) start!: number;
  @ApiProperty({ description: 'seconds', example: 7.9 }) end!: number;
  @ApiProperty({ nullable: true, type: Number, description: '0..1', example: 0.93 }) confidence!: number | null;
  @ApiProperty({ nullable: true, type: Number, description: '0-based speaker (diarization or channel)', example: 0 }) speaker_tag!: number | null;
  @ApiPropertyOptional({ description: 'true when the engine returned the word without times and they were interpolated' }) interpolated?: boolean;
}

export class SegmentSchema {
  @ApiProperty({ description: 'seconds' }) start!: number;
  @ApiProperty({ description: 'seconds' }) end!: number;
  @ApiProperty() text!: string;
  @ApiProperty({ nullable: true, type: Number }) speaker_tag!: number | null;
  @ApiProperty({ nullable: true, type: Number, description: '0..1' }) confidence!: number | null;
  @ApiProperty({ type: [WordSchema] }) words!: WordSchema[];
}

export class JobStatusSchema {
  @ApiProperty({ format: 'uuid' }) job_id!: string;
  @ApiProperty({ enum: ['queued', 'processing', 'completed', 'failed', 'cancelled'] }) status!: string;
  @ApiProperty({ minimum: 0, maximum: 100 }) progress!: number;
  @ApiProperty({ enum: [...JOB_STAGES, 'cancelled'] }) stage!: string;
  @ApiProperty({ format: 'uuid' }) transcript_id!: string;
  @ApiProperty() engine!: string;
  @ApiProperty({ enum: ENGINE_TASKS, description: 'transcribe, or translate (English text)' }) task!: string;
  @ApiProperty({ nullable: true, type: String, example: 'worker-1:4242' }) worker_id!: string | null;
  @ApiProperty() message!: string;
  @ApiPropertyOptional({ description: 'pieces (chunks × channels) transcribed so far' }) chunks_done?: number;
  @ApiPropertyOptional() chunks_total?: number;
  @ApiPropertyOptional({
    description: 'once completed: segments_count, duration (seconds), and warnings when the intake found the recording shorter than its header claimed',
    example: { segments_count: 4, duration: 11 },
  })
  result?: Record<string, unknown>;
  @ApiPropertyOptional({ example: { code: 'ENGINE_UNAVAILABLE', message: 'connect ECONNREFUSED', retryable: true, attempt: 4, final: true } }) error?: Record<string, unknown>;
}

export class JobResultSchema {
  @ApiProperty({ format: 'uuid' }) job_id!: string;
  @ApiProperty({ format: 'uuid' }) transcript_id!: string;
  @ApiProperty({ enum: ['completed'] }) status!: string;
  @ApiProperty() filename!: string;
  @ApiProperty({ enum: ENGINE_TASKS, description: 'transcribe, or translate: text and segments are English and language is en' }) task!: string;
  @ApiProperty({ nullable: true, type: String, description: 'presigned GET (1 h) or this API’s audio endpoint; null once deleted by retention' }) audio_url!: string | null;
  @ApiProperty({ nullable: true, type: String, example: 'en-US' }) language!: string | null;
  @ApiProperty({ nullable: true, type: Number, description: 'seconds' }) duration!: number | null;
  @ApiProperty() text!: string;
  @ApiProperty({ type: [SegmentSchema] }) segments!: SegmentSchema[];
  @ApiProperty({ nullable: true, type: 'object', additionalProperties: { type: 'string' }, example: { '0': 'provider', '1': 'patient' } }) speaker_roles!: Record<string, string> | null;
  @ApiProperty({ description: 'engine that produced the result (after any fallback)' }) engine!: string;
  @ApiProperty({ nullable: true, type: String }) model!: string | null;
  @ApiProperty({ type: [String], description: 'options the engine ignored, degraded behaviour, no speech found, words dropped by the hallucination guard, repetition loops' }) warnings!: string[];
  @ApiProperty({ type: Number, nullable: true, description: 'seconds of speech the VAD found in the recording' }) speech_seconds!: number | null;
  @ApiProperty({ type: Number, nullable: true, description: 'seconds of audio sent to the engine (speech plus short pauses, or the whole recording)' }) engine_seconds!: number | null;
}

export class ApiErrorSchema {
  @ApiProperty({ example: 400 }) statusCode!: number;
  @ApiProperty({ example: 'Bad Request' }) error!: string;
  @ApiProperty({ example: 'UNKNOWN_ENGINE', description: 'machine-readable code' }) code!: string;
  @ApiProperty({ example: "Unknown engine 'kaldi'. Available engines: pocketsphinx.", description: 'what was wrong and what is accepted (a list for field validation errors)' }) message!: string;
}

export class QueueGroupSchema {
  @ApiProperty({ description: 'whole jobs waiting in the transcription queue (intake, short recordings, merges)' }) waiting_jobs!: number;
  @ApiProperty({ description: "chunks of long recordings waiting in the engine's chunk queue" }) waiting_chunks!: number;
  @ApiProperty({ nullable: true, type: Number, description: 'seconds the longest-waiting job or chunk has waited; null when none waits' }) oldest_wait_sec!: number | null;
}

export class EngineQueueSchema extends QueueGroupSchema {
  @ApiProperty({ type: 'object', additionalProperties: { $ref: '#/components/schemas/QueueGroupSchema' }, description: 'the same for the caller\'s own API key only, under its label (8 hex characters of its SHA-256, or anonymous); other keys count in the totals but are not listed (operators see every key in /metrics)' }) by_key!: Record<string, QueueGroupSchema>;
  @ApiProperty({ description: 'a queue held more than 2000 waiting jobs: the counts are lower bounds' }) truncated!: boolean;
}

export class EngineSchema {
  @ApiProperty() engine!: string;
  @ApiProperty() display_name!: string;
  @ApiProperty() available!: boolean;
  @ApiProperty({ nullable: true, type: String }) message!: string | null;
  @ApiProperty({ nullable: true, type: String }) checked_at!: string | null;
  @ApiProperty() diarization!: boolean;
  @ApiProperty() word_boosting!: boolean;
  @ApiProperty() word_timestamps!: boolean;
  @ApiProperty() language_detection!: boolean;
  @ApiProperty({ description: 'accepts task=translate (English text from speech in any language)' }) translation!: boolean;
  @ApiProperty({ type: [String] }) languages!: string[];
  @ApiProperty({ type: [String] }) models!: string[];
  @ApiProperty({ nullable: true, type: Number, description: 'seconds' }) max_duration_sec!: number | null;
  @ApiProperty({ nullable: true, type: EngineQueueSchema, description: 'what waits for this engine (null when Redis did not answer within 1 s)' }) queue!: EngineQueueSchema | null;
}

export class EnginesSchema {
  @ApiProperty({ type: 'object', additionalProperties: { $ref: '#/components/schemas/EngineSchema' } }) engines!: Record<string, EngineSchema>;
  @ApiProperty({ example: 'pocketsphinx' }) default_engine!: string;
}
