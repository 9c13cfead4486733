import { IsOptional, IsString, IsUUID, Matches, MaxLength } from 'class-validator';

/**
 * Multipart form fields of `POST /api/transcribe/jobs/transcribe[/:engine]` (besides `file`).
 * Multipart values arrive as strings.
 */
export class SubmitJobDto {
  /** Groups transcripts of one conversation or session (UUID). */
  @IsOptional()
  @IsUUID('all', { message: 'session_id must be a UUID' })
  session_id?: string;

  /** Engine id (`pocketsphinx`, `whisper-rocm`, `whisperx`, `riva`; `asr` = `riva`). Default: DEFAULT_TRANSCRIPTION_ENGINE. Ignored when the path names the engine. */
  @IsOptional()
  @IsString()
  @MaxLength(64)
  engine?: string;

  /** Word-boosting context (UUID of a stored context). */
  @IsOptional()
  @IsUUID('all', { message: 'context_id must be a UUID' })
  context_id?: string;

  /** Spoken language: ISO-639-1 (`en`) or BCP-47 (`en-US`). Absent = engine default or auto-detection. */
  @IsOptional()
  @Matches(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/, { message: "language must be a language code such as 'en' or 'en-US'" })
  language?: string;
}

/** 202 response of a submission. */
export interface SubmitJobResponse {
  job_id: string;
  transcript_id: string;
  engine: string;
  status: 'queued';
  message: string;
}
