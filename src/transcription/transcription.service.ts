import { Inject, Injectable } from '@nestjs/common';
import { AudioService } from '../audio/audio.service.js';
import { assertWithinDurationLimit } from '../audio/duration-limit.js';
import { AppConfig } from '../config/app-config.js';
import { EngineRegistry } from '../engines/engine-registry.js';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage.driver.js';
import { TempWorkspaceService } from '../storage/temp-workspace.service.js';
import { AttemptFailure } from './failure.js';
import { engineForAttempt, type ChunkJobResult, type JobProgress, type MergeStepData, type TranscribeStepData, type TranscriptionJobResult } from './job-catalog.js';
import { JobLifecycle, type AttemptRef, type CompletionFacts } from './job-lifecycle.service.js';
import { guardResult, LongAudioPipeline, type SplitPlan } from './long-audio/long-audio.pipeline.js';
import { mapChunkResult } from './long-audio/time-map.js';
import type { TranscriptionResult } from '../engines/engine.spec.js';
import { WORKER_ID } from './worker-id.js';

/** One attempt of a transcription job, as the service sees it (decoupled from BullMQ's Job class). */
export interface TranscriptionAttempt extends AttemptRef {
  /** Publishes the job's progress (SSE, status). */
  reportProgress(progress: JobProgress): Promise<void>;
  /** Appends a line to the job's own log (BullMQ job log). */
  log(line: string): Promise<void>;
}

/** How truncationWarning's warning begins. */
const TRUNCATION_WARNING_START = 'the recording looks truncated:';

/**
 * The intake's warnings among a saved result's `warnings` (today: the truncation warning), for
 * answers that show them apart, such as a job's status read back from Postgres.
 */
export function intakeWarningsOf(warnings: readonly string[]): string[] {
  return warnings.filter((w) => w.startsWith(TRUNCATION_WARNING_START));
}

/**
 * A recording that decodes to clearly less than its container claimed was cut off (an upload
 * interrupted, a file copied before it was finished); ffmpeg decodes what is there without
 * complaint. Tolerance: 1 s or 5 % of the claim, whichever is more, because some claims are
 * estimates (an MP3 without a Xing header: from its first frame's bitrate and the file size).
 * @param claimedSec the container's claim at submission (seconds), if any.
 * @param decodedSec seconds of 16 kHz mono audio the intake decoded.
 * @returns a warning that names both durations, or null.
 */
export function truncationWarning(claimedSec: number | undefined, decodedSec: number): string | null {
  if (claimedSec === undefined || !Number.isFinite(claimedSec) || claimedSec <= 0) return null;
  if (claimedSec - decodedSec <= Math.max(1, 0.05 * claimedSec)) return null;
  return `${TRUNCATION_WARNING_START} its header claims ${claimedSec.toFixed(1)} s but only ${decodedSec.toFixed(1)} s of audio could be decoded; the transcript covers those ${decodedSec.toFixed(1)} s`;
}

/** The result with `warnings` appended (each once). */
function addWarnings(result: TranscriptionResult, warnings: string[]): TranscriptionResult {
  const missing = warnings.filter((w) => !result.warnings.includes(w));
  return missing.length ? { ...result, warnings: [...result.warnings, ...missing] } : result;
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
    private readonly config: AppConfig,
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
      // The submission only read the header: ffprobe gives the authoritative channel count.
      const channels = data.multichannel ? (await this.audio.ffprobe(input, signal)).channels : 1;
      // Decoding stops one second past MAX_AUDIO_DURATION_SECONDS: a container that under-declared
      // its length is refused without writing hours of PCM first.
      const limit = this.config.MAX_AUDIO_DURATION_SECONDS;
      const normalized = await this.audio.normalize(input, workspace.file('audio.wav'), { signal, ...(limit > 0 ? { endSec: limit + 1 } : {}) });
      assertWithinDurationLimit(normalized.duration_sec, limit, true);
      const truncated = truncationWarning(data.claimedDurationSec, normalized.duration_sec);
      if (truncated) await attempt.log(truncated);
      const intakeWarnings = truncated ? [truncated] : [];
      const withIntake = (plan: SplitPlan): SplitPlan => (intakeWarnings.length ? { ...plan, merge: { ...plan.merge, intakeWarnings } } : plan);
      const completed = async (result: TranscriptionResult, facts: CompletionFacts): Promise<TranscribeOutcome> => {
        const summary = await this.lifecycle.completed(attempt, data, addWarnings(result, intakeWarnings), facts);
        return { kind: 'completed', summary: intakeWarnings.length ? { ...summary, warnings: intakeWarnings } : summary };
      };

      if (data.multichannel) {
        // Each channel is cut at pauses and transcribed on its own (one speaker per channel).
        await progress({ progress: 5, stage: 'splitting', message: 'cutting each channel into chunks' });
        const plan = await this.pipeline.split({ jobId, data, engine, signal }, workspace, input, normalized, Math.max(1, channels));
        await attempt.log(plan.summary);
        return { kind: 'split', plan: withIntake(plan) };
      }

      await progress({ progress: 3, stage: 'intake', message: 'finding speech (Silero VAD)' });
      const regions = await this.pipeline.speechRegions(normalized, signal);
      const speechSec = regions.reduce((sum, r) => sum + (r.end - r.start), 0);
      const duration = normalized.duration_sec;
      if (regions.length === 0) {
        // Nothing to transcribe: no engine call (Whisper hallucinates on exactly this audio).
        await progress({ progress: 90, stage: 'saving', message: 'no speech found; saving an empty transcript' });
        const empty = { text: '', language: data.options.task === 'translate' ? 'en' : (data.options.language ?? null), duration_sec: duration, segments: [], warnings: [`no speech detected in ${duration.toFixed(1)} s of audio (Silero VAD); the engine was not called`], engine: { id: engine.id, model: null } };
        return completed(empty, { processingSec: (Date.now() - started) / 1000, speechSec: 0, engineSec: 0 });
      }

      const speechOnly = data.vadFilter !== false && !engine.capabilities.whole_file;
      let audio = { path: normalized.path, duration_sec: duration, max_volume_db: normalized.max_volume_db };
      let mapBack: ((r: TranscriptionResult) => TranscriptionResult) | null = null;
      if (speechOnly) {
        const chunks = await this.pipeline.planSpeech(engine, regions, duration);
        if (chunks.length > 1) {
          await progress({ progress: 5, stage: 'splitting', message: `cutting ${chunks.length} speech-only chunks` });
          const plan = await this.pipeline.splitSpeech({ jobId, data, engine }, workspace, normalized, { chunks, speechSec });
          await attempt.log(plan.summary);
          return { kind: 'split', plan: withIntake(plan) };
        }
        const chunk = chunks[0];
        const file = workspace.file('speech.wav');
        const written = await this.pipeline.writeSpeechChunk(normalized, chunk, file);
        audio = { path: file, duration_sec: written.durationSec, max_volume_db: normalized.max_volume_db };
        mapBack = (r) => mapChunkResult(chunk, r, duration);
      } else if (this.pipeline.needsSplit(engine, duration, false)) {
        await progress({ progress: 5, stage: 'splitting', message: 'finding pauses and cutting chunks' });
        const plan = await this.pipeline.split({ jobId, data, engine, signal }, workspace, input, normalized, 0);
        await attempt.log(plan.summary);
        return { kind: 'split', plan: withIntake({ ...plan, merge: { ...plan.merge, guardRegions: regions, speechSec, engineSec: duration } }) };
      }

      await progress({ progress: 10, stage: 'transcribing', message: `transcribing with ${engine.id}` });
      let lastReported = 10;
      const raw = await engine.transcribe(
        audio,
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
      // Speech-only audio is mapped back onto the recording's timeline; audio that held non-speech is guarded.
      const result = mapBack ? guardResult(mapBack(raw)) : guardResult(raw, regions);
      await progress({ progress: 90, stage: 'saving', message: 'saving transcript' });
      return await completed(result, { processingSec: (Date.now() - started) / 1000, speechSec, engineSec: audio.duration_sec });
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
      const intakeWarnings = data.intakeWarnings ?? [];
      const merged = addWarnings(this.pipeline.merge(data, childResults), intakeWarnings);
      await attempt.reportProgress({ progress: 95, stage: 'saving', chunks_done: total, chunks_total: total, worker_id: WORKER_ID, message: 'saving transcript' });
      const summary = await this.lifecycle.completed(attempt, data, merged, { chunks: total, speechSec: data.speechSec, engineSec: data.engineSec });
      await this.pipeline.removeChunkObjects(attempt.jobId);
      return intakeWarnings.length ? { ...summary, warnings: intakeWarnings } : summary;
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
