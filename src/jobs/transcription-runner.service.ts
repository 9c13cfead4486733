import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { AudioError } from '../audio/audio.errors.js';
import { AudioService, type NormalizedAudio } from '../audio/audio.service.js';
import { planChunks, type PlannedChunk } from '../audio/chunk-plan.js';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { EngineError } from '../engines/engine.error.js';
import { EngineRegistry, UnknownEngineError } from '../engines/engine-registry.js';
import type { TranscriptionEngine, TranscriptionResult } from '../engines/engine.spec.js';
import { STORAGE_DRIVER, StorageNotFoundError, type StorageDriver } from '../storage/storage.driver.js';
import { TempWorkspaceService, type TempWorkspace } from '../storage/temp-workspace.service.js';
import { TranscriptsService } from '../transcripts/transcripts.service.js';
import { assignSpeakerRoles } from '../transcripts/speaker-roles.js';
import { ChunkQueues, ChunkWorkers, FinalChunkError } from './chunk-queues.js';
import { chunkPrefix, engineForAttempt, type ChunkJobData, type ChunkJobResult, type JobProgress, type TranscribeJobData, type TranscribeJobResult } from './jobs.constants.js';
import { mergePieces, type PiecePlacement } from './pipeline/merge.js';
import { TranscriptJobEntity } from './transcript-job.entity.js';
import { completedPayload, failedPayload, type WebhookPayload } from '../webhooks/webhook.constants.js';
import { WebhookService } from '../webhooks/webhook.service.js';
import { TranscriptionQueue } from './transcription.queue.js';
import { WORKER_ID } from './worker-id.js';

export { WORKER_ID } from './worker-id.js';

/** How a transcription job's attempt hands work to BullMQ flows (implemented by the processor). */
export interface JobFlow {
  /** BullMQ id and qualified queue name of this job, for its children's `parent` option. */
  parent: { id: string; queue: string };
  /** Persists the job's data (the step machine's state) in Redis. */
  updateData(data: TranscribeJobData): Promise<void>;
  /** Moves the job to waiting-children; false when every child is already done (run the next step now). */
  waitForChildren(): Promise<boolean>;
  /** Return values of the finished children. */
  childResults(): Promise<ChunkJobResult[]>;
  /** A line in the job's BullMQ log. */
  log(line: string): Promise<void>;
}

/** One attempt of a transcription job, as the runner sees it (decoupled from BullMQ's Job class). */
export interface JobAttempt {
  jobId: string;
  data: TranscribeJobData;
  /** 1-based number of this attempt. */
  attempt: number;
  /** Attempts allowed in total. */
  maxAttempts: number;
  signal: AbortSignal;
  reportProgress(progress: JobProgress): Promise<void>;
  flow: JobFlow;
}

/** Returned by run() when the job now waits for its chunk jobs (the processor yields to BullMQ). */
export const WAITING_FOR_CHUNKS = Symbol('WAITING_FOR_CHUNKS');

/** Raised by run() to tell the processor whether BullMQ may try again. */
export class JobAttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly details: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'JobAttemptError';
  }
}

/** Maps any failure to the error_details JSON and the retry decision. */
function describeFailure(err: unknown): { message: string; retryable: boolean; details: Record<string, unknown> } {
  if (err instanceof EngineError) return { message: err.message, retryable: err.retryable, details: err.toJSON() };
  if (err instanceof AudioError) return { message: err.message, retryable: false, details: { code: err.code, message: err.message, ...err.details } };
  if (err instanceof UnknownEngineError) return { message: err.message, retryable: false, details: { code: 'ENGINE_NOT_CONFIGURED', message: err.message } };
  if (err instanceof StorageNotFoundError) return { message: `audio is gone from storage (${err.key})`, retryable: false, details: { code: 'AUDIO_MISSING', key: err.key } };
  const message = err instanceof Error ? err.message : String(err);
  // Anything else (database, filesystem, Redis hiccups) may pass: let BullMQ retry with backoff.
  return { message, retryable: true, details: { code: 'INTERNAL', message } };
}

/** A job aborted through its signal (DELETE, or worker shutdown) is never retried. */
const CANCELLED = { message: 'the job was cancelled', retryable: false, details: { code: 'JOB_CANCELLED', message: 'the job was cancelled' } };

/**
 * Runs transcription jobs on a worker, keeping transcript_jobs (worker_id, attempts, started_at,
 * completed_at, error_details) and the transcript's status up to date.
 *
 * Short mono audio is transcribed in one engine call. Long audio (over the engine's chunking
 * threshold) and multichannel jobs go through the long-audio pipeline: the recording is decoded
 * once, cut at pauses into chunks (per channel when multichannel), each chunk becomes a BullMQ
 * child job that any worker may run and that is retried alone, and once all are done the job
 * runs again to merge them (offsets added, each word kept by exactly one chunk).
 *
 * Progress (seed 001's mapping): 0–5 intake, 5–10 split, 10–90 chunks done/total (or the engine's
 * own progress), 90–100 merge and save.
 */
@Injectable()
export class TranscriptionRunner implements OnApplicationBootstrap {
  private readonly logger = new Logger(TranscriptionRunner.name);

  constructor(
    private readonly config: AppConfig,
    private readonly engines: EngineRegistry,
    private readonly audio: AudioService,
    private readonly transcripts: TranscriptsService,
    private readonly workspaces: TempWorkspaceService,
    private readonly chunkQueues: ChunkQueues,
    private readonly chunkWorkers: ChunkWorkers,
    private readonly queue: TranscriptionQueue,
    private readonly metrics: MetricsService,
    private readonly webhooks: WebhookService,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    @InjectRepository(TranscriptJobEntity) private readonly jobs: Repository<TranscriptJobEntity>,
  ) {}

  onApplicationBootstrap(): void {
    this.chunkWorkers.start(
      (job) => this.runChunk(job),
      (data) => this.pieceDone(data),
    );
  }

  /** Chunking threshold and target length (seconds) for an engine: its own, else the gateway's. */
  private chunking(engine: TranscriptionEngine): { threshold: number; target: number } | null {
    if (engine.capabilities.whole_file) return null;
    // An engine's per-call limit (e.g. the OpenAI cloud's 25 MB) caps both numbers.
    const max = engine.capabilities.max_duration_sec ?? Infinity;
    return {
      threshold: Math.min(engine.capabilities.chunking_threshold_sec ?? this.config.CHUNKING_THRESHOLD, max),
      target: Math.min(engine.capabilities.chunk_duration_sec ?? this.config.CHUNK_DURATION, max * 0.8),
    };
  }

  /**
   * @returns the summary BullMQ stores as the job's return value, or WAITING_FOR_CHUNKS.
   * @throws JobAttemptError with `retryable` deciding whether BullMQ tries again.
   */
  async run(attempt: JobAttempt): Promise<TranscribeJobResult | typeof WAITING_FOR_CHUNKS> {
    const { jobId, data } = attempt;
    const progress = (p: Omit<JobProgress, 'worker_id'>) => attempt.reportProgress({ ...p, worker_id: WORKER_ID });
    if (data.step !== 'merge') {
      await this.jobs
        .createQueryBuilder()
        .update()
        .set({ workerId: WORKER_ID, attempts: attempt.attempt, startedAt: () => 'COALESCE(started_at, now())' })
        .where('job_id = :jobId', { jobId })
        .execute();
      await this.transcripts.setStatus(data.transcriptId, 'processing');
    } else {
      // The merge may run on another worker than the split (e.g. after the splitting worker died).
      await this.jobs.update({ jobId }, { workerId: WORKER_ID });
    }

    const started = Date.now();
    const workspace = await this.workspaces.create(jobId);
    try {
      const engine = this.engines.get(engineForAttempt(data, attempt.attempt));
      if (data.step === 'merge') return await this.merge(attempt, engine, progress);
      if (engine.id !== data.engine) {
        await attempt.flow.log(`falling back from ${data.engine} to ${engine.id} (attempt ${attempt.attempt})`);
        this.logger.warn(`job ${jobId} falls back from ${data.engine} to ${engine.id}`, { job_id: jobId, engine: engine.id });
      }

      await progress({ progress: 0, stage: 'intake', message: 'fetching audio' });
      const input = workspace.file('input');
      await this.storage.download(data.audioKey, input);
      await progress({ progress: 2, stage: 'intake', message: 'decoding to 16 kHz mono' });
      const channels = data.multichannel ? (await this.audio.probe(input, attempt.signal)).channels : 1;
      const normalized = await this.audio.normalize(input, workspace.file('audio.wav'), { signal: attempt.signal });
      const chunking = this.chunking(engine);
      const long = chunking !== null && normalized.duration_sec > chunking.threshold;

      if (!long && !data.multichannel) {
        await progress({ progress: 10, stage: 'transcribing', message: `transcribing with ${engine.id}` });
        let lastReported = 10;
        const result = await engine.transcribe(
          { path: normalized.path, duration_sec: normalized.duration_sec, max_volume_db: normalized.max_volume_db },
          data.options,
          {
            signal: attempt.signal,
            onProgress: ({ fraction, stage }) => {
              const pct = Math.floor(10 + 80 * Math.min(1, Math.max(0, fraction)));
              // Whole percents only: engines may report per word, SSE clients need far less.
              if (pct > lastReported) {
                lastReported = pct;
                void progress({ progress: pct, stage: 'transcribing', message: stage ?? `transcribing with ${engine.id}` }).catch(() => undefined);
              }
            },
          },
        );
        await progress({ progress: 90, stage: 'saving', message: 'saving transcript' });
        return await this.save(jobId, data, result, normalized.duration_sec, (Date.now() - started) / 1000);
      }

      await progress({ progress: 5, stage: 'splitting', message: 'finding pauses and cutting chunks' });
      const pieces = await this.split(attempt, workspace, input, normalized, chunking, data.multichannel ? Math.max(1, channels) : 0);
      const chunkJobs: ChunkJobData[] = pieces.map(({ placement, key, audio }) => ({
        parentJobId: jobId,
        transcriptId: data.transcriptId,
        engine: engine.id,
        audioKey: key,
        piece: placement,
        durationSec: audio.duration_sec,
        maxVolumeDb: audio.max_volume_db,
        options: data.options,
        ...(data.fallbacks ? { fallbacks: data.fallbacks.filter((id) => id !== engine.id), attemptsPerEngine: data.attemptsPerEngine } : {}),
        total: pieces.length,
      }));
      await attempt.flow.updateData({ ...data, step: 'merge', pieces: pieces.map((p) => p.placement), durationSec: normalized.duration_sec });
      await this.chunkQueues.addChunks(attempt.flow.parent, engine.id, chunkJobs, this.config.JOB_MAX_RETRIES, chunkJobs[0]?.fallbacks?.length ?? 0);
      await progress({ progress: 10, stage: 'transcribing', chunks_done: 0, chunks_total: pieces.length, message: `transcribing ${pieces.length} chunks with ${engine.id}` });
      if (await attempt.flow.waitForChildren()) return WAITING_FOR_CHUNKS;
      // Every chunk already finished (another worker was quick): merge in this same run.
      return await this.merge({ ...attempt, data: { ...data, step: 'merge', pieces: pieces.map((p) => p.placement), durationSec: normalized.duration_sec } }, engine, progress);
    } catch (err) {
      throw await this.fail(attempt, err);
    } finally {
      await workspace.dispose();
    }
  }

  /**
   * Cuts the decoded recording into pieces and stores each (16 kHz mono WAV) for the chunk workers.
   * @param channels 0 for the downmixed recording, N to cut each of N channels.
   */
  private async split(
    attempt: JobAttempt,
    workspace: TempWorkspace,
    input: string,
    normalized: NormalizedAudio,
    chunking: { threshold: number; target: number } | null,
    channels: number,
  ): Promise<{ placement: PiecePlacement; key: string; audio: NormalizedAudio }[]> {
    const duration = normalized.duration_sec;
    let plan: PlannedChunk[] = [{ index: 0, start: 0, end: duration, core_start: 0, core_end: duration, cut: 'end' }];
    if (chunking && duration > chunking.threshold) {
      const silences = await this.audio.detectSilences(normalized.path, duration, {
        noiseDb: this.config.CHUNK_SILENCE_DB,
        minSilenceSec: this.config.CHUNK_MIN_SILENCE,
        signal: attempt.signal,
      });
      plan = planChunks(duration, silences, { target: chunking.target, minPause: this.config.CHUNK_MIN_SILENCE, blindOverlap: this.config.CHUNK_BLIND_OVERLAP });
      const blind = plan.filter((c) => c.cut === 'blind');
      const line = `split ${duration.toFixed(1)} s into ${plan.length} chunks of about ${chunking.target} s at ${silences.length} detected pauses` +
        (blind.length ? `; ${blind.length} blind cut(s) at ${blind.map((c) => c.core_end.toFixed(1)).join(', ')} s (no pause ≥ ${this.config.CHUNK_MIN_SILENCE} s within ±20 % of the target)` : '');
      await attempt.flow.log(line);
      if (blind.length) this.logger.warn(`job ${attempt.jobId}: ${line}`);
    }
    const pieces: { placement: PiecePlacement; key: string; audio: NormalizedAudio }[] = [];
    const channelList: (number | null)[] = channels > 0 ? Array.from({ length: channels }, (_, c) => c) : [null];
    for (const channel of channelList) {
      for (const chunk of plan) {
        const index = pieces.length;
        const file = workspace.file(`piece-${index}.wav`);
        // Mono pieces are cut from the decoded WAV (sample-exact); channel pieces from the original input.
        const audio = channel === null
          ? await this.audio.normalize(normalized.path, file, { signal: attempt.signal, startSec: chunk.start, endSec: chunk.end })
          : await this.audio.normalize(input, file, { signal: attempt.signal, channel, startSec: chunk.start, endSec: chunk.end });
        const key = `${chunkPrefix(attempt.jobId)}${index}.wav`;
        await this.storage.put(key, file, { contentType: 'audio/wav' });
        pieces.push({ placement: { index, channel, offset: chunk.start, core_start: chunk.core_start, core_end: chunk.core_end }, key, audio });
      }
    }
    return pieces;
  }

  private async merge(
    attempt: JobAttempt,
    engine: TranscriptionEngine,
    progress: (p: Omit<JobProgress, 'worker_id'>) => Promise<void>,
  ): Promise<TranscribeJobResult> {
    const { data, jobId } = attempt;
    const pieces = data.pieces ?? [];
    await progress({ progress: 90, stage: 'merging', chunks_done: pieces.length, chunks_total: pieces.length, message: `merging ${pieces.length} chunks` });
    const values = await attempt.flow.childResults();
    const results = new Map(values.map((v) => [v.index, v.result]));
    const merged = mergePieces(pieces, results, data.durationSec ?? 0);
    await progress({ progress: 95, stage: 'saving', chunks_done: pieces.length, chunks_total: pieces.length, message: 'saving transcript' });
    const [row] = await this.jobs.query('SELECT extract(epoch from (now() - started_at)) AS sec FROM transcript_jobs WHERE job_id = $1', [jobId]);
    const summary = await this.save(jobId, data, { ...merged, engine: merged.engine.id === 'unknown' ? { id: engine.id, model: null } : merged.engine }, data.durationSec ?? 0, Number(row?.sec ?? 0), pieces.length);
    await this.removeChunkObjects(jobId);
    return summary;
  }

  /**
   * Saves the result unless the job already ended: a cancelled job (DELETE) stays cancelled, and a
   * job that an earlier run already saved (its worker died before BullMQ heard) is not written twice.
   * @throws JobAttemptError (final) when the job was cancelled meanwhile.
   */
  private async save(jobId: string, data: TranscribeJobData, result: TranscriptionResult, durationSec: number, processingSec: number, chunks?: number): Promise<TranscribeJobResult> {
    const speakerRoles = data.speakerRoles ? assignSpeakerRoles(result.segments, data.speakerRoles) : null;
    const saved = await this.jobs.manager.transaction(async (manager) => {
      const claimed = await manager
        .getRepository(TranscriptJobEntity)
        .createQueryBuilder()
        .update()
        .set({ completedAt: () => 'now()', errorDetails: null })
        .where('job_id = :jobId AND completed_at IS NULL', { jobId })
        .execute();
      if (!claimed.affected) return false;
      await this.transcripts.saveResult(
        data.transcriptId,
        result,
        {
          processing_sec: processingSec,
          rtf: durationSec > 0 ? processingSec / durationSec : undefined,
          ...(chunks ? { chunks } : {}),
          ...(result.engine.id !== data.engine ? { fallback_from: data.engine } : {}),
        },
        manager,
        speakerRoles,
      );
      return true;
    });
    if (!saved) {
      const current = await this.transcripts.findById(data.transcriptId);
      if (current?.status === 'completed') {
        // An earlier run saved it and died, perhaps before queueing the webhook: queue it now. Same
        // delivery id (X-Webhook-Id), so a webhook already sent is at most repeated, never changed.
        await this.notifyWebhook(jobId, data.transcriptId, completedPayload({ jobId, transcriptId: data.transcriptId, segmentsCount: current.segments?.length ?? 0, durationSec: current.durationSec ?? 0, text: current.text ?? '' }));
        return { segments_count: current.segments?.length ?? 0, duration: current.durationSec ?? 0 };
      }
      throw new JobAttemptError('the job was cancelled while it ran; its result was discarded', false, { code: 'JOB_CANCELLED' });
    }
    this.logger.log(`job ${jobId} completed by ${result.engine.id}: ${result.segments.length} segments, ${durationSec.toFixed(1)} s audio in ${processingSec.toFixed(1)} s${chunks ? ` (${chunks} chunks)` : ''}`, { job_id: jobId, engine: result.engine.id });
    this.metrics.jobFinished({ engine: result.engine.id, status: 'completed', durationSec: processingSec, audioSec: durationSec, processingSec, keyLabel: data.keyLabel });
    await this.notifyWebhook(jobId, data.transcriptId, completedPayload({ jobId, transcriptId: data.transcriptId, segmentsCount: result.segments.length, durationSec: result.duration_sec, text: result.text }));
    return { segments_count: result.segments.length, duration: result.duration_sec };
  }

  /** Records a failed attempt (final or not) and returns the error for BullMQ. */
  private async fail(attempt: JobAttempt, err: unknown): Promise<JobAttemptError> {
    if (err instanceof JobAttemptError) return err;
    const failure = attempt.signal.aborted ? CANCELLED : describeFailure(err);
    const final = !failure.retryable || attempt.attempt >= attempt.maxAttempts;
    const details = { ...failure.details, attempt: attempt.attempt, final, at: new Date().toISOString() };
    await this.recordFailure(attempt.jobId, attempt.data.transcriptId, details, final);
    this.logger.warn(`job ${attempt.jobId} attempt ${attempt.attempt}/${attempt.maxAttempts} failed (${final ? 'final' : 'will retry'}): ${failure.message}`, { job_id: attempt.jobId, engine: attempt.data.engine, code: failure.details.code });
    if (final) this.metrics.jobFinished({ engine: attempt.data.engine, status: 'failed', durationSec: -1, audioSec: 0, processingSec: 0, keyLabel: attempt.data.keyLabel });
    return new JobAttemptError(failure.message, failure.retryable, details);
  }

  /**
   * Records an error on the job row. Once a final error is recorded (completed_at set) later ones
   * are ignored: when one chunk fails for good, its siblings' follow-up errors (their audio removed)
   * must not hide the cause.
   */
  private async recordFailure(jobId: string, transcriptId: string, details: Record<string, unknown>, final: boolean): Promise<void> {
    const patch: QueryDeepPartialEntity<TranscriptJobEntity> = { errorDetails: details as QueryDeepPartialEntity<Record<string, unknown>>, ...(final ? { completedAt: new Date() } : {}) };
    const updated = await this.jobs.createQueryBuilder().update().set(patch).where('job_id = :jobId AND completed_at IS NULL', { jobId }).execute();
    if (updated.affected) await this.transcripts.setStatus(transcriptId, final ? 'failed' : 'processing');
    if (final) await this.removeChunkObjects(jobId);
    // Only the update that made the job final notifies: later errors of sibling chunks, and jobs
    // ended by DELETE (completed_at already set), send nothing.
    if (final && updated.affected) await this.notifyWebhook(jobId, transcriptId, failedPayload({ jobId, transcriptId, error: details }));
  }

  /**
   * Queues the job's webhook when it was submitted with a callback_url. Never throws: the job's
   * outcome is recorded already and must not turn into a failure because Redis hiccupped here.
   */
  private async notifyWebhook(jobId: string, transcriptId: string, payload: WebhookPayload): Promise<void> {
    try {
      const row = await this.jobs.findOne({ where: { jobId }, select: { id: true, callbackUrl: true } });
      if (!row?.callbackUrl) return;
      await this.webhooks.enqueue({ jobId, transcriptId, url: row.callbackUrl, event: payload.event, payload });
    } catch (err) {
      this.logger.error(`job ${jobId}: queueing its ${payload.event} webhook failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async removeChunkObjects(jobId: string): Promise<void> {
    const keys = await this.storage.list(chunkPrefix(jobId));
    await Promise.all(keys.map((k) => this.storage.delete(k)));
  }

  /**
   * One attempt of one piece: fetch its WAV, call the engine, delete the piece's object.
   * A final failure marks the whole transcript failed (BullMQ then fails the parent).
   */
  async runChunk(job: { id: string; data: ChunkJobData; attempt: number; maxAttempts: number; signal: AbortSignal }): Promise<ChunkJobResult> {
    const { data } = job;
    const workspace = await this.workspaces.create(job.id);
    try {
      const engine = this.engines.get(engineForAttempt(data, job.attempt));
      const file = workspace.file('piece.wav');
      await this.storage.download(data.audioKey, file);
      const result = await engine.transcribe({ path: file, duration_sec: data.durationSec, max_volume_db: data.maxVolumeDb }, data.options, { signal: job.signal });
      await this.storage.delete(data.audioKey);
      return { index: data.piece.index, result };
    } catch (err) {
      const failure = job.signal.aborted ? CANCELLED : describeFailure(err);
      const final = !failure.retryable || job.attempt >= job.maxAttempts;
      const details = { ...failure.details, chunk: data.piece.index, chunk_attempt: job.attempt, final, at: new Date().toISOString() };
      await this.recordFailure(data.parentJobId, data.transcriptId, details, final);
      this.logger.warn(`job ${data.parentJobId} chunk ${data.piece.index} attempt ${job.attempt}/${job.maxAttempts} failed (${final ? 'final' : 'will retry'}): ${failure.message}`, { job_id: data.parentJobId, engine: data.engine, chunk: data.piece.index });
      if (!failure.retryable) throw new FinalChunkError(failure.message);
      throw err;
    } finally {
      await workspace.dispose();
    }
  }

  /** After each finished piece: count it atomically and publish the parent's progress (10–90 %). */
  private async pieceDone(data: ChunkJobData): Promise<void> {
    const done = Math.min(await this.chunkQueues.countDone(data.parentJobId), data.total);
    await this.queue.updateProgress(data.parentJobId, {
      progress: Math.floor(10 + (80 * done) / data.total),
      stage: 'transcribing',
      chunks_done: done,
      chunks_total: data.total,
      worker_id: WORKER_ID,
      message: `${done} of ${data.total} chunks transcribed`,
    });
  }
}
