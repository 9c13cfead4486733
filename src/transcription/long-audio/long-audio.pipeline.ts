import { Inject, Injectable, Logger } from '@nestjs/common';
import { AudioService, type NormalizedAudio } from '../../audio/audio.service.js';
import { ANONYMOUS_KEY_LABEL } from '../../metrics/metrics.service.js';
import { AppConfig } from '../../config/app-config.js';
import type { EngineCapabilities, TranscriptionEngine, TranscriptionResult } from '../../engines/engine.spec.js';
import { STORAGE_DRIVER, type StorageDriver } from '../../storage/storage.driver.js';
import type { TempWorkspace } from '../../storage/temp-workspace.service.js';
import { chunkPrefix, type ChunkJobData, type ChunkJobResult, type MergeStepData, type TranscribeStepData } from '../job-catalog.js';
import { planChunks, type PlannedChunk } from './chunk-plan.js';
import { ChunkQueues, type ParentRef } from './chunk-queues.js';
import { mergePieces, type PiecePlacement } from './merge.js';
import { readWavHeader } from '../../audio/wav.js';
import { VoiceActivityDetector, type SpeechRegion } from '../../audio/vad.js';
import { dropWordsOutsideSpeech, findRepetitionLoops } from './hallucination-guard.js';
import { writeSpeechChunkWav } from './speech-audio.js';
import { planSpeechChunks, type SpeechChunk } from './speech-chunks.js';
import { mergeSpeechChunks, speechChunkPlacement } from './time-map.js';

/** Digital silence standing in for each stretch of non-speech inside a chunk, seconds. */
export const SPEECH_GAP_SEC = 0.5;

/** Chunking of one engine: split above `threshold` seconds into chunks of about `target` seconds. */
export interface Chunking {
  threshold: number;
  target: number;
}

/**
 * Chunking threshold and target length (seconds) for an engine: its own, else the gateway's
 * defaults; null for whole-file engines (WhisperX: its diarization needs the whole recording).
 * An engine's per-call limit (`max_duration_sec`, e.g. the OpenAI cloud's 25 MB) caps the
 * threshold, and the target at 80 % of it, so no chunk reaches the limit.
 */
export function engineChunking(capabilities: EngineCapabilities, defaults: Chunking): Chunking | null {
  if (capabilities.whole_file) return null;
  const max = capabilities.max_duration_sec ?? Infinity;
  return {
    threshold: Math.min(capabilities.chunking_threshold_sec ?? defaults.threshold, max),
    target: Math.min(capabilities.chunk_duration_sec ?? defaults.target, max * 0.8),
  };
}

/** What a split produced: the job's next step, and one chunk job per piece. */
export interface SplitPlan {
  merge: MergeStepData;
  chunks: ChunkJobData[];
  /** A line for the job's log describing the cut. */
  summary: string;
}

/**
 * The long-audio pipeline: long recordings (over the engine's chunking threshold) and
 * multichannel ones are cut into pieces, each piece becomes a chunk job on its engine's queue
 * (any worker transcribes it; a failed piece is retried alone), and once every piece is done the
 * results are merged onto the recording's timeline.
 *
 * Plan: cut inside pauses found by ffmpeg `silencedetect` (chunk-plan.ts); merge: offsets added,
 * each word kept by exactly one piece (merge.ts).
 */
@Injectable()
export class LongAudioPipeline {
  private readonly logger = new Logger(LongAudioPipeline.name);

  constructor(
    private readonly config: AppConfig,
    private readonly audio: AudioService,
    private readonly chunkQueues: ChunkQueues,
    private readonly vad: VoiceActivityDetector,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  /** Speech regions of the decoded recording (Silero VAD; settings VAD_*), seconds. */
  speechRegions(normalized: NormalizedAudio, signal: AbortSignal): Promise<SpeechRegion[]> {
    return this.vad.detectFile(normalized.path, { signal });
  }

  /** Chunking of an engine under this gateway's CHUNKING_THRESHOLD and CHUNK_DURATION. */
  chunking(engine: TranscriptionEngine): Chunking | null {
    return engineChunking(engine.capabilities, { threshold: this.config.CHUNKING_THRESHOLD, target: this.config.CHUNK_DURATION });
  }

  /** Whether a recording goes through the pipeline rather than one engine call. */
  needsSplit(engine: TranscriptionEngine, durationSec: number, multichannel: boolean): boolean {
    const chunking = this.chunking(engine);
    return multichannel || (chunking !== null && durationSec > chunking.threshold);
  }

  /**
   * Plans the cuts of a decoded recording (16 kHz mono), cuts every piece (per channel when
   * `channels` > 0) and stores each as a 16 kHz mono WAV under the job's chunk prefix.
   * @param input the original upload (channel pieces are cut from it).
   * @param channels 0 for the downmixed recording, N to cut each of N channels.
   * @throws AudioError when ffmpeg cannot cut; storage errors.
   */
  async split(
    job: { jobId: string; data: TranscribeStepData; engine: TranscriptionEngine; signal: AbortSignal },
    workspace: TempWorkspace,
    input: string,
    normalized: NormalizedAudio,
    channels: number,
  ): Promise<SplitPlan> {
    const { jobId, data, engine, signal } = job;
    const duration = normalized.duration_sec;
    const chunking = this.chunking(engine);
    let plan: PlannedChunk[] = [{ index: 0, start: 0, end: duration, core_start: 0, core_end: duration, cut: 'end' }];
    let summary = `transcribing ${channels} channels of ${duration.toFixed(1)} s separately`;
    if (chunking && duration > chunking.threshold) {
      const silences = await this.audio.detectSilences(normalized.path, duration, { noiseDb: this.config.CHUNK_SILENCE_DB, minSilenceSec: this.config.CHUNK_MIN_SILENCE, signal });
      plan = planChunks(duration, silences, { target: chunking.target, minPause: this.config.CHUNK_MIN_SILENCE, blindOverlap: this.config.CHUNK_BLIND_OVERLAP });
      const blind = plan.filter((c) => c.cut === 'blind');
      summary = `split ${duration.toFixed(1)} s into ${plan.length} chunks of about ${chunking.target} s at ${silences.length} detected pauses` +
        (blind.length ? `; ${blind.length} blind cut(s) at ${blind.map((c) => c.core_end.toFixed(1)).join(', ')} s (no pause ≥ ${this.config.CHUNK_MIN_SILENCE} s within ±20 % of the target)` : '');
      if (blind.length) this.logger.warn(`job ${jobId}: ${summary}`);
    }

    const pieces: { placement: PiecePlacement; key: string; audio: NormalizedAudio }[] = [];
    const channelList: (number | null)[] = channels > 0 ? Array.from({ length: channels }, (_, c) => c) : [null];
    for (const channel of channelList) {
      for (const chunk of plan) {
        const index = pieces.length;
        const file = workspace.file(`piece-${index}.wav`);
        // Mono pieces are cut from the decoded WAV (sample-exact); channel pieces from the original input.
        const audio = channel === null
          ? await this.audio.normalize(normalized.path, file, { signal, startSec: chunk.start, endSec: chunk.end })
          : await this.audio.normalize(input, file, { signal, channel, startSec: chunk.start, endSec: chunk.end });
        const key = `${chunkPrefix(jobId)}${index}.wav`;
        await this.storage.put(key, file, { contentType: 'audio/wav' });
        pieces.push({ placement: { index, channel, offset: chunk.start, core_start: chunk.core_start, core_end: chunk.core_end }, key, audio });
      }
    }

    const fallbacks = data.fallbacks?.filter((id) => id !== engine.id);
    const chunks: ChunkJobData[] = pieces.map(({ placement, key, audio }) => ({
      parentJobId: jobId,
      transcriptId: data.transcriptId,
      engine: engine.id,
      audioKey: key,
      piece: placement,
      durationSec: audio.duration_sec,
      maxVolumeDb: audio.max_volume_db,
      options: data.options,
      ...(fallbacks ? { fallbacks, attemptsPerEngine: data.attemptsPerEngine } : {}),
      total: pieces.length,
    }));
    const merge: MergeStepData = { ...data, step: 'merge', pieces: pieces.map((p) => p.placement), durationSec: duration, chunkEngine: engine.id };
    return { merge, chunks, summary };
  }

  /**
   * How many calls of an engine can run at once: its configured concurrency (e.g.
   * WHISPER_ROCM_CONCURRENCY, the number of GPU replicas), else the live workers of its chunk
   * queue times WORKER_CONCURRENCY; at least 1.
   */
  async capacity(engine: TranscriptionEngine): Promise<number> {
    if (engine.concurrency) return engine.concurrency;
    const workers = await this.chunkQueues.workerCount(engine.id).catch(() => 1);
    return Math.max(1, workers * this.config.WORKER_CONCURRENCY);
  }

  /**
   * Packs speech regions into speech-only chunks for an engine: each at most the engine's chunk
   * length, at least `capacity` of them when the speech is long enough, balanced (speech-chunks.ts).
   */
  async planSpeech(engine: TranscriptionEngine, regions: SpeechRegion[], durationSec: number): Promise<SpeechChunk[]> {
    const maxChunkSec = this.chunking(engine)?.target ?? this.config.CHUNK_DURATION;
    return planSpeechChunks(regions, durationSec, { maxChunkSec, capacity: await this.capacity(engine), gapSec: Math.min(SPEECH_GAP_SEC, maxChunkSec / 10) });
  }

  /** Writes one speech chunk's audio (header + byte ranges of the decoded PCM + silent gaps) to `outPath`. */
  async writeSpeechChunk(normalized: NormalizedAudio, chunk: SpeechChunk, outPath: string): Promise<{ durationSec: number }> {
    return writeSpeechChunkWav({ path: normalized.path, header: await readWavHeader(normalized.path) }, chunk, outPath);
  }

  /**
   * Cuts and stores the speech-only chunks of a recording (vad_filter on): one chunk job each, cut
   * in-process from the decoded PCM (no ffmpeg per chunk).
   */
  async splitSpeech(
    job: { jobId: string; data: TranscribeStepData; engine: TranscriptionEngine },
    workspace: TempWorkspace,
    normalized: NormalizedAudio,
    speech: { chunks: SpeechChunk[]; speechSec: number },
  ): Promise<SplitPlan> {
    const { jobId, data, engine } = job;
    const header = await readWavHeader(normalized.path);
    const pieces: { placement: PiecePlacement; key: string; chunk: SpeechChunk; durationSec: number }[] = [];
    for (const chunk of speech.chunks) {
      const file = workspace.file(`speech-${chunk.index}.wav`);
      const { durationSec } = await writeSpeechChunkWav({ path: normalized.path, header }, chunk, file);
      const key = `${chunkPrefix(jobId)}${chunk.index}.wav`;
      await this.storage.put(key, file, { contentType: 'audio/wav' });
      pieces.push({ placement: speechChunkPlacement(chunk), key, chunk, durationSec });
    }
    const engineSec = pieces.reduce((sum, p) => sum + p.durationSec, 0);
    const fallbacks = data.fallbacks?.filter((id) => id !== engine.id);
    const chunks: ChunkJobData[] = pieces.map(({ placement, key, chunk, durationSec }) => ({
      parentJobId: jobId,
      transcriptId: data.transcriptId,
      engine: engine.id,
      audioKey: key,
      piece: placement,
      speechChunk: chunk,
      durationSec,
      maxVolumeDb: normalized.max_volume_db,
      options: data.options,
      ...(fallbacks ? { fallbacks, attemptsPerEngine: data.attemptsPerEngine } : {}),
      total: pieces.length,
    }));
    const merge: MergeStepData = {
      ...data, step: 'merge', pieces: pieces.map((p) => p.placement), durationSec: normalized.duration_sec, chunkEngine: engine.id,
      speechChunks: speech.chunks, speechSec: speech.speechSec, engineSec,
    };
    const summary = `sending ${engineSec.toFixed(1)} s of speech (of ${normalized.duration_sec.toFixed(1)} s recorded) to ${engine.id} in ${chunks.length} speech-only chunks`;
    return { merge, chunks, summary };
  }

  /**
   * Queues the chunk jobs of a split as children of the transcription job `parent`, taking turns
   * with other API keys' chunks (fair scheduling); each carries the key's label (backlog per key).
   */
  async enqueue(parent: ParentRef, merge: MergeStepData, chunks: ChunkJobData[]): Promise<void> {
    const fallbackCount = chunks[0]?.fallbacks?.length ?? 0;
    const keyLabel = merge.keyLabel ?? ANONYMOUS_KEY_LABEL;
    await this.chunkQueues.addChunks(parent, merge.chunkEngine, chunks.map((c) => ({ ...c, keyLabel })), (this.config.JOB_MAX_RETRIES + 1) * (1 + fallbackCount), keyLabel);
  }

  /**
   * Merges the chunk results onto the recording's timeline (mergePieces) and removes the chunk
   * objects. @throws Error when a piece has no result (its chunk job vanished from Redis).
   */
  merge(data: MergeStepData, childResults: ChunkJobResult[]): TranscriptionResult {
    const results = new Map(childResults.map((v) => [v.index, v.result]));
    const merged = data.speechChunks ? mergeSpeechChunks(data.speechChunks, results, data.durationSec) : mergePieces(data.pieces, results, data.durationSec);
    const result = merged.engine.id === 'unknown' ? { ...merged, engine: { id: data.chunkEngine, model: null } } : merged;
    return guardResult(result, data.guardRegions);
  }

  /** Fetches a stored piece (16 kHz mono WAV) into `file` for its chunk job. */
  async fetchPiece(key: string, file: string): Promise<void> {
    await this.storage.download(key, file);
  }

  /** Deletes one stored piece once it is transcribed. */
  async removePiece(key: string): Promise<void> {
    await this.storage.delete(key);
  }

  /** Deletes every stored piece of a job (after the merge, and on failure or cancellation). */
  async removeChunkObjects(jobId: string): Promise<void> {
    const keys = await this.storage.list(chunkPrefix(jobId));
    await Promise.all(keys.map((k) => this.storage.delete(k)));
  }
}

/**
 * The hallucination guard on a finished result. With `regions` (the engine heard non-speech:
 * a whole-file engine, or vad_filter off), words lying wholly in VAD non-speech more than 1 s
 * from speech are removed, with a warning counting them. Any result: a segment run that repeats
 * one phrase over and over (a Whisper loop) is flagged in the warnings.
 */
export function guardResult(result: TranscriptionResult, regions?: readonly SpeechRegion[]): TranscriptionResult {
  const filtered = regions ? dropWordsOutsideSpeech(result, regions, 1).result : result;
  const loops = findRepetitionLoops(filtered.segments);
  return loops.length ? { ...filtered, warnings: [...filtered.warnings, ...loops.map((l) => l.warning)] } : filtered;
}
