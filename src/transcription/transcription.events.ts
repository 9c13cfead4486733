import { Injectable, Logger } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import type { JobProgress } from './job-catalog.js';

/**
 * Typed lifecycle events of transcription jobs. JobLifecycle (worker role) and JobSubmitter /
 * JobControl (API role) emit them; metrics, webhooks and SSE subscribe with
 * `@OnEvent(TranscriptionEvent.X)`, so the pipeline never calls those modules.
 *
 * Events are in-process. The API learns what workers did through QueueEventsBridge, which turns
 * BullMQ's queue events (Redis) into `Changed` events in the API process.
 */
export const TranscriptionEvent = {
  /** A job was accepted and queued (API role). */
  Submitted: 'transcription.submitted',
  /** An attempt began on a worker. */
  AttemptStarted: 'transcription.attempt-started',
  /** An attempt (of the job or of one chunk) failed; `final` tells whether the job is over. */
  AttemptFailed: 'transcription.attempt-failed',
  /** The job completed and its transcript is saved (also re-emitted, `replayed`, when a re-run finds it saved). */
  Completed: 'transcription.completed',
  /** The job failed for good (emitted once, by the update that made it final). */
  Failed: 'transcription.failed',
  /** A queued or running job was cancelled (DELETE). */
  Cancelled: 'transcription.cancelled',
  /** Something about a job changed (API role, from the queue's events): progress, or a state to re-read. */
  Changed: 'transcription.changed',
} as const;

export interface JobSubmittedEvent {
  jobId: string;
  transcriptId: string;
  engine: string;
  keyLabel?: string;
}

export interface AttemptStartedEvent {
  jobId: string;
  transcriptId: string;
  engine: string;
  attempt: number;
  workerId: string;
}

export interface AttemptFailedEvent {
  jobId: string;
  transcriptId: string;
  engine: string;
  /** 1-based attempt of the job, or of the chunk when `chunk` is set. */
  attempt: number;
  chunk?: number;
  final: boolean;
  /** Public part of the failure (code, message, safe fields). */
  error: Record<string, unknown>;
}

export interface JobCompletedEvent {
  jobId: string;
  transcriptId: string;
  /** Engine that did the work (after any fallback). */
  engine: string;
  /** Engine the job was submitted to. */
  requestedEngine: string;
  segmentsCount: number;
  /** Seconds of audio. */
  durationSec: number;
  /** Wall seconds from the first attempt's start to completion. */
  processingSec: number;
  text: string;
  keyLabel?: string;
  callbackUrl: string | null;
  /** True when a re-run found the result already saved: subscribers that count must not count twice. */
  replayed: boolean;
}

export interface JobFailedEvent {
  jobId: string;
  transcriptId: string;
  engine: string;
  keyLabel?: string;
  callbackUrl: string | null;
  /** Public part of the failure (code, message, safe fields): what clients and webhooks may see. */
  error: Record<string, unknown>;
}

export interface JobCancelledEvent {
  jobId: string;
  transcriptId: string;
  engine: string;
}

export interface JobChangedEvent {
  jobId: string;
  /** Set when the change is a progress report (the payload of BullMQ updateProgress); otherwise re-read the job's state. */
  progress?: Partial<JobProgress>;
}

/** Event name → payload. */
export interface TranscriptionEventMap {
  [TranscriptionEvent.Submitted]: JobSubmittedEvent;
  [TranscriptionEvent.AttemptStarted]: AttemptStartedEvent;
  [TranscriptionEvent.AttemptFailed]: AttemptFailedEvent;
  [TranscriptionEvent.Completed]: JobCompletedEvent;
  [TranscriptionEvent.Failed]: JobFailedEvent;
  [TranscriptionEvent.Cancelled]: JobCancelledEvent;
  [TranscriptionEvent.Changed]: JobChangedEvent;
}

/**
 * The typed face of the event bus for the pipeline's publishers. `emit` waits for every
 * subscriber (so a webhook is queued before BullMQ hears the job completed) and never throws:
 * a subscriber's failure is logged and must not change the job's outcome.
 */
@Injectable()
export class TranscriptionEvents {
  private readonly logger = new Logger(TranscriptionEvents.name);

  constructor(private readonly bus: EventEmitter2) {}

  async emit<K extends keyof TranscriptionEventMap>(name: K, payload: TranscriptionEventMap[K]): Promise<void> {
    try {
      await this.bus.emitAsync(name, payload);
    } catch (err) {
      this.logger.error(`a subscriber of ${name} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Synchronous fan-out for high-rate events (progress) whose subscribers do no I/O. */
  emitNow<K extends keyof TranscriptionEventMap>(name: K, payload: TranscriptionEventMap[K]): void {
    this.bus.emit(name, payload);
  }
}
