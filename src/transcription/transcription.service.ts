import { Inject, Injectable } from '@nestjs/common';
import { AudioService } from '../audio/audio.service.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage.driver.js';
import { TempWorkspaceService } from '../storage/temp-workspace.service.js';
import { AttemptFailure } from './failure.js';
import { engineForAttempt, type ChunkJobResult, type JobProgress, type MergeStepData, type TranscribeStepData, type TranscriptionJobResult } from './job-catalog.js';
import { JobLifecycle, type AttemptRef } from './job-lifecycle.service.js';
import { LongAudioPipeline, type SplitPlan } from './long-audio/long-audio.pipeline.js';
import { WORKER_ID } from './worker-id.js';

/** One attempt of a transcription job, as the service sees it (decoupled from BullMQ's Job class). */
export interface TranscriptionAttempt extends AttemptRef {
  /** Publishes the job's progress (SSE, status). */
  reportProgress(progress: JobProgress): Promise<void>;
  /** Appends a line to the job's own log (BullMQ job log). */
  log(line: string): Promise<void>;
}

/** How the first step ended: transcribed in one engine call, or split into chunk jobs. */
export type TranscribeOutcome =
  | { kind: 'completed'; summary: TranscriptionJobResult }
  | { kind: 'split'; plan: SplitPlan };

/**
 * The steps of a transcription job on a worker.
 *
 * `transcribe` (first step): fetch the upload, decode it once to 16 kHz mono; short mono audio is
 * transcribed in one engine call and saved; long audio (over the engine's chunking threshold)
 * and multichannel audio are split by the LongAudioPipeline into chunk jobs.
 * `merge` (second step, once every chunk is done): merge the chunk results and save.
 *
 * Progress: 0–5 % intake, 5–10 % split, 10–90 % transcribing (the engine's own progress, or
 * chunks done / total), 90–100 % merge and save. Every failure is recorded by the JobLifecycle
 * and rethrown as an AttemptFailure.
 */
@Injectable()
export class TranscriptionService {
  constructor(
    private readonly engines: EngineRegistry,
    private readonly audio: AudioService,
    private readonly workspaces: TempWorkspaceService,
    private readonly pipeline: LongAudioPipeline,
    private readonly lifecycle: JobLifecycle,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  /** @throws AttemptFailure (recorded) with `retryable` deciding whether BullMQ tries again. */
  async transcribe(attempt: TranscriptionAttempt, data: TranscribeStepData): Promise<TranscribeOutcome> {
    const { jobId, signal } = attempt;
    const progress = (p: Omit<JobProgress, 'worker_id'>) => attempt.reportProgress({ ...p, worker_id: WORKER_ID });
    const started = Date.now();
    const workspace = await this.workspaces.create(jobId);
    try {
      const engine = this.engines.get(engineForAttempt(data, attempt.attempt));
      await this.lifecycle.attemptStarted(attempt, data, engine.id);
      if (engine.id !== data.engine) await attempt.log(`falling back from ${data.engine} to ${engine.id} (attempt ${attempt.attempt})`);

      await progress({ progress: 0, stage: 'intake', message: 'fetching audio' });
      const input = workspace.file('input');
      await this.storage.download(data.audioKey, input);
      await progress({ progress: 2, stage: 'intake', message: 'decoding to 16 kHz mono' });
      const channels = data.multichannel ? (await this.audio.probe(input, signal)).channels : 1;
      const normalized = await this.audio.normalize(input, workspace.file('audio.wav'), { signal });

      if (this.pipeline.needsSplit(engine, normalized.duration_sec, data.multichannel)) {
        await progress({ progress: 5, stage: 'splitting', message: 'finding pauses and cutting chunks' });
        const plan = await this.pipeline.split({ jobId, data, engine, signal }, workspace, input, normalized, data.multichannel ? Math.max(1, channels) : 0);
        await attempt.log(plan.summary);
        return { kind: 'split', plan };
      }

      await progress({ progress: 10, stage: 'transcribing', message: `transcribing with ${engine.id}` });
      let lastReported = 10;
      const result = await engine.transcribe(
        { path: normalized.path, duration_sec: normalized.duration_sec, max_volume_db: normalized.max_volume_db },
        data.options,
        {
          signal,
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
      const summary = await this.lifecycle.completed(attempt, data, result, { processingSec: (Date.now() - started) / 1000 });
      return { kind: 'completed', summary };
    } catch (err) {
      throw await this.fail(attempt, data, err);
    } finally {
      await workspace.dispose();
    }
  }

  /**
   * Second step: merges the chunk results onto the recording's timeline and saves them.
   * @throws AttemptFailure (recorded).
   */
  async merge(attempt: TranscriptionAttempt, data: MergeStepData, childResults: ChunkJobResult[]): Promise<TranscriptionJobResult> {
    const total = data.pieces.length;
    try {
      await this.lifecycle.attemptStarted(attempt, data, data.chunkEngine);
      await attempt.reportProgress({ progress: 90, stage: 'merging', chunks_done: total, chunks_total: total, worker_id: WORKER_ID, message: `merging ${total} chunks` });
      const merged = this.pipeline.merge(data, childResults);
      await attempt.reportProgress({ progress: 95, stage: 'saving', chunks_done: total, chunks_total: total, worker_id: WORKER_ID, message: 'saving transcript' });
      const summary = await this.lifecycle.completed(attempt, data, merged, { chunks: total });
      await this.pipeline.removeChunkObjects(attempt.jobId);
      return summary;
    } catch (err) {
      throw await this.fail(attempt, data, err);
    }
  }

  /**
   * Records a failed attempt of this job (also for failures while its chunk jobs are queued); a
   * final one also removes the job's stored pieces. @returns the AttemptFailure to throw.
   */
  async fail(attempt: AttemptRef, data: TranscribeStepData | MergeStepData, err: unknown): Promise<AttemptFailure> {
    const failure = await this.lifecycle.attemptFailed(attempt, data, err);
    if (!failure.retryable || attempt.attempt >= attempt.maxAttempts) await this.pipeline.removeChunkObjects(attempt.jobId);
    return failure;
  }
}
