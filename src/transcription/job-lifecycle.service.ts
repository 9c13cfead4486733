import { Injectable, Logger } from '@nestjs/common';
import type { TranscriptionResult } from '../engines/engine.spec.js';
import { publicErrorOf } from '../common/gateway-error.js';
import { assignSpeakerRoles } from '../transcripts/speaker-roles.js';
import type { TranscriptMetadata } from '../transcripts/transcript.entity.js';
import { AttemptFailure, CANCELLED, chunkFailure, classifyFailure, type ChunkPlace, type Failure } from './failure.js';
import type { TranscriptionJobData, TranscriptionJobResult } from './job-catalog.js';
import { JobRepository } from './job.repository.js';
import { TranscriptionEvent, TranscriptionEvents } from './transcription.events.js';
import { WORKER_ID } from './worker-id.js';

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Who is running: one attempt of a job (or of one of its chunks), as the lifecycle records it. */
export interface AttemptRef {
  jobId: string;
  /** 1-based attempt number (BullMQ counts attempts across a fallback chain). */
  attempt: number;
  /** Attempts allowed in total. */
  maxAttempts: number;
  /** Aborted by DELETE (cross-process cancellation) or worker shutdown. */
  signal: AbortSignal;
}

/** Facts about a finished transcription that are recorded with it. */
export interface CompletionFacts {
  /** Seconds the work took; omitted: since the first attempt started (split recordings). */
  processingSec?: number;
  /** Pieces the recording was split into (chunks × channels), if it was. */
  chunks?: number;
  /** Seconds of speech the VAD found in the recording. */
  speechSec?: number;
  /** Seconds of audio sent to the engine (speech plus the short pauses standing in for non-speech, or the whole recording). */
  engineSec?: number;
}

/**
 * Records what happens to a transcription job — attempts, failures, completion — through the
 * JobRepository, and tells the rest of the gateway through typed TranscriptionEvents (metrics,
 * webhooks and SSE subscribe; the pipeline never calls them).
 */
@Injectable()
export class JobLifecycle {
  private readonly logger = new Logger(JobLifecycle.name);

  constructor(
    private readonly repository: JobRepository,
    private readonly events: TranscriptionEvents,
  ) {}

  /** The first step of an attempt began on this worker: transcript `processing`. */
  async attemptStarted(ref: AttemptRef, data: TranscriptionJobData, engine: string): Promise<void> {
    if (data.step === 'merge') {
      await this.repository.markWorker(ref.jobId, WORKER_ID);
      return;
    }
    await this.repository.markAttemptStarted(ref.jobId, data.transcriptId, WORKER_ID, ref.attempt);
    if (engine !== data.engine) this.logger.warn(`job ${ref.jobId} falls back from ${data.engine} to ${engine} (attempt ${ref.attempt})`, { job_id: ref.jobId, engine });
    await this.events.emit(TranscriptionEvent.AttemptStarted, { jobId: ref.jobId, transcriptId: data.transcriptId, engine, attempt: ref.attempt, workerId: WORKER_ID });
  }

  /**
   * Saves the result (speaker roles applied) and ends the job, unless it already ended: a
   * cancelled job stays cancelled, and a job an earlier run already saved is not written twice
   * (its Completed event is emitted again, `replayed`, so a webhook lost in a crash is queued).
   * @returns the summary BullMQ stores as the job's return value.
   * @throws AttemptFailure (not retryable) when the job was cancelled meanwhile.
   */
  async completed(ref: AttemptRef, data: TranscriptionJobData, result: TranscriptionResult, facts: CompletionFacts): Promise<TranscriptionJobResult> {
    const { jobId } = ref;
    const metadata: TranscriptMetadata = {
      ...(facts.chunks ? { chunks: facts.chunks } : {}),
      ...(facts.speechSec !== undefined ? { speech_sec: round3(facts.speechSec) } : {}),
      ...(facts.engineSec !== undefined ? { engine_sec: round3(facts.engineSec) } : {}),
      ...(result.engine.id !== data.engine ? { fallback_from: data.engine } : {}),
    };
    const speakerRoles = data.speakerRoles ? assignSpeakerRoles(result.segments, data.speakerRoles) : null;
    const outcome = await this.repository.complete(jobId, data.transcriptId, { result, metadata, speakerRoles, processingSec: facts.processingSec });
    const base = { jobId, transcriptId: data.transcriptId, engine: result.engine.id, requestedEngine: data.engine, keyLabel: data.keyLabel };
    switch (outcome.kind) {
      case 'ended':
        throw new AttemptFailure('the job was cancelled while it ran; its result was discarded', false);
      case 'already-completed':
        await this.events.emit(TranscriptionEvent.Completed, {
          ...base, segmentsCount: outcome.segmentsCount, durationSec: outcome.durationSec, processingSec: 0, text: outcome.text, callbackUrl: outcome.callbackUrl, replayed: true,
        });
        return { segments_count: outcome.segmentsCount, duration: outcome.durationSec };
      case 'completed':
        this.logger.log(
          `job ${jobId} completed by ${result.engine.id}: ${result.segments.length} segments, ${result.duration_sec.toFixed(1)} s audio in ${outcome.processingSec.toFixed(1)} s${facts.chunks ? ` (${facts.chunks} chunks)` : ''}`,
          { job_id: jobId, engine: result.engine.id },
        );
        await this.events.emit(TranscriptionEvent.Completed, {
          ...base, segmentsCount: result.segments.length, durationSec: result.duration_sec, processingSec: outcome.processingSec, text: result.text, callbackUrl: outcome.callbackUrl, replayed: false,
        });
        return { segments_count: result.segments.length, duration: result.duration_sec };
    }
  }

  /**
   * Records a failed attempt of the job, or of one of its chunks (`place` set; `ref.jobId` is then
   * the parent job and `ref.attempt` the chunk's attempt; the message then names the chunk and
   * its times in the recording, see chunkFailure), and decides
   * whether it was the last: not retryable, or no attempts left. Only the write that ends the job
   * emits Failed; later failures of sibling chunks are ignored.
   * @returns the error to throw to BullMQ (public message only).
   */
  async attemptFailed(ref: AttemptRef, data: { transcriptId: string; engine: string; keyLabel?: string }, err: unknown, place?: ChunkPlace): Promise<AttemptFailure> {
    if (err instanceof AttemptFailure) return err;
    const classified: Failure = classifyFailure(err, ref.signal.aborted);
    // A chunk's failure says which part of the recording failed; the cancellation message stays as it is.
    const failure = place && classified !== CANCELLED ? chunkFailure(classified, place) : classified;
    const chunk = place?.index;
    const final = !failure.retryable || ref.attempt >= ref.maxAttempts;
    const record = {
      ...failure.record,
      ...(chunk !== undefined ? { chunk, chunk_attempt: ref.attempt } : { attempt: ref.attempt }),
      final,
      at: new Date().toISOString(),
    };
    const { jobId } = ref;
    const outcome = await this.repository.recordFailure(jobId, data.transcriptId, record, final);
    const internal = record.internal ? ` (${JSON.stringify(record.internal)})` : '';
    this.logger.warn(
      `job ${jobId}${chunk !== undefined ? ` chunk ${chunk}` : ''} attempt ${ref.attempt}/${ref.maxAttempts} failed (${final ? 'final' : 'will retry'}): ${failure.message}${internal}`,
      { job_id: jobId, engine: data.engine, code: record.code, ...(chunk !== undefined ? { chunk } : {}) },
    );
    const error = publicErrorOf(record) ?? { code: record.code, message: record.message };
    await this.events.emit(TranscriptionEvent.AttemptFailed, { jobId, transcriptId: data.transcriptId, engine: data.engine, attempt: ref.attempt, ...(chunk !== undefined ? { chunk } : {}), final, error });
    if (final && outcome.recorded) {
      await this.events.emit(TranscriptionEvent.Failed, { jobId, transcriptId: data.transcriptId, engine: data.engine, keyLabel: data.keyLabel, callbackUrl: outcome.callbackUrl, error });
    }
    return new AttemptFailure(failure.message, failure.retryable);
  }

  /**
   * Ends a queued or running job as cancelled (DELETE). @returns false when it had already ended.
   */
  async cancelled(jobId: string, transcriptId: string, engine: string): Promise<boolean> {
    const details = { code: 'JOB_CANCELLED', message: 'cancelled by DELETE', retryable: false, final: true, at: new Date().toISOString() };
    const ended = await this.repository.cancel(jobId, transcriptId, details);
    if (ended) await this.events.emit(TranscriptionEvent.Cancelled, { jobId, transcriptId, engine });
    return ended;
  }
}
