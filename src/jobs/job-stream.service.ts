import type { MessageEvent, OnModuleDestroy } from '@nestjs/common';
import { Injectable, Optional } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { concat, concatMap, distinctUntilChanged, filter, from, interval, map, merge, Observable, of, Subject, takeWhile } from 'rxjs';
import type { JobStatusView } from './dto/job-views.js';
import type { JobProgress } from '../transcription/job-catalog.js';
import { TranscriptionEvent, type JobChangedEvent } from '../transcription/transcription.events.js';
import { JobQueryService } from './job-query.service.js';
import { QueueBacklog } from '../transcription/queue-backlog.js';

/** Whether a job has ended: no later event can change its status. */
const isTerminal = (s: JobStatusView) => s.status === 'completed' || s.status === 'failed' || s.status === 'cancelled';

/** Seconds between safety re-reads of a streamed job's state (covers a Redis reconnect that dropped events). */
const RESYNC_INTERVAL_MS = 5000;

/**
 * Per-job status streams for SSE, built from the pipeline's typed `Changed` events.
 *
 * Every subscriber shares one Subject fed by the event bus. Each event only signals "this job
 * changed" (or carries its progress): the stream then re-reads the job's authoritative status,
 * so events that arrive out of order or twice cannot put a stale state on the wire.
 */
@Injectable()
export class JobStreamService implements OnModuleDestroy {
  private readonly changes = new Subject<JobChangedEvent>();

  constructor(
    private readonly jobs: JobQueryService,
    @Optional() private readonly backlog?: QueueBacklog,
  ) {}

  @OnEvent(TranscriptionEvent.Changed)
  onChanged(event: JobChangedEvent): void {
    this.changes.next(event);
  }

  onModuleDestroy(): void {
    this.changes.complete();
  }

  /**
   * Status events of one job: the current state at once, then every change, completing after
   * the first terminal state (completed, failed or cancelled). Progress events are applied from their own
   * payload (so every chunk done shows up, even when several finish at once); every other event
   * re-reads the job's authoritative status. Progress never goes backwards on the stream.
   * Unsubscribing (client gone) tears down the per-subscriber filter and timer.
   *
   * @param initial the status already read by the caller (so an unknown job is a 404 before streaming starts).
   */
  stream(jobId: string, initial: JobStatusView): Observable<MessageEvent> {
    let last = initial;
    // One immediate re-read after subscribing closes the gap between the caller's read and the subscription.
    const signals = merge(
      this.changes.pipe(filter((c) => c.jobId === jobId)),
      interval(RESYNC_INTERVAL_MS).pipe(map(() => ({ jobId }))),
      of({ jobId }),
    );
    const updates = signals.pipe(
      concatMap((c): Observable<JobStatusView> => {
        const p: Partial<JobProgress> | undefined = (c as JobChangedEvent).progress;
        if (p && p.stage && !isTerminal(last)) {
          return of({ ...last, status: 'processing', stage: p.stage, progress: Math.round(p.progress ?? last.progress), message: p.message ?? last.message, worker_id: p.worker_id ?? last.worker_id, ...(p.chunks_total !== undefined ? { chunks_done: p.chunks_done ?? 0, chunks_total: p.chunks_total } : {}) });
        }
        return from(this.jobs.status(jobId));
      }),
    );
    return concat(of(initial), updates).pipe(
      concatMap((s) => from(this.withPosition(s))),
      map((s) => {
        const view = s.status === 'processing' && s.progress < last.progress && last.status === 'processing' ? { ...s, progress: last.progress } : s;
        last = view;
        return view;
      }),
      distinctUntilChanged((a, b) => JSON.stringify(a) === JSON.stringify(b)),
      takeWhile((s) => !isTerminal(s), true),
      map((s) => ({ data: s }) satisfies MessageEvent),
    );
  }

  /** A waiting job's place in line (`queue_position`: jobs or chunks ahead of it), so a client sees why it waits. */
  private async withPosition(view: JobStatusView): Promise<JobStatusView> {
    const waiting = view.status === 'queued' || (view.status === 'processing' && view.stage === 'transcribing');
    const { queue_position: _stale, ...rest } = view;
    if (!this.backlog || !waiting) return rest;
    const position = await this.backlog.position(view.job_id, view.engine).catch(() => null);
    return position ? { ...rest, queue_position: position } : rest;
  }
}
