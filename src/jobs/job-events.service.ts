import { OnQueueEvent, QueueEventsHost, QueueEventsListener } from '@nestjs/bullmq';
import type { MessageEvent, OnModuleDestroy } from '@nestjs/common';
import { Injectable } from '@nestjs/common';
import { concat, concatMap, distinctUntilChanged, filter, from, interval, map, merge, Observable, of, Subject, takeWhile } from 'rxjs';
import type { JobStatusView } from './dto/job-views.js';
import { QueueName, type JobProgress } from './jobs.constants.js';
import { JobsService } from './jobs.service.js';

/** Seconds between safety re-reads of a streamed job's state (covers a Redis reconnect that dropped events). */
const RESYNC_INTERVAL_MS = 5000;

/**
 * Turns BullMQ queue events into per-job status streams for SSE.
 *
 * One QueueEvents connection per API process fans out to every subscriber through a Subject.
 * Each event only signals "this job changed": the stream then re-reads the job's authoritative
 * status, so events that arrive out of order or twice cannot put a stale state on the wire.
 */
@Injectable()
@QueueEventsListener(QueueName.Transcription)
export class JobEventsService extends QueueEventsHost implements OnModuleDestroy {
  private readonly changes = new Subject<{ jobId: string; progress?: Partial<JobProgress> }>();

  constructor(private readonly jobs: JobsService) {
    super();
  }

  @OnQueueEvent('progress') onProgress({ jobId, data }: { jobId: string; data: unknown }) {
    this.changes.next({ jobId, progress: typeof data === 'object' && data !== null ? (data as Partial<JobProgress>) : undefined });
  }
  @OnQueueEvent('active') onActive({ jobId }: { jobId: string }) { this.changes.next({ jobId }); }
  @OnQueueEvent('completed') onCompleted({ jobId }: { jobId: string }) { this.changes.next({ jobId }); }
  @OnQueueEvent('failed') onFailed({ jobId }: { jobId: string }) { this.changes.next({ jobId }); }
  @OnQueueEvent('delayed') onDelayed({ jobId }: { jobId: string }) { this.changes.next({ jobId }); }
  @OnQueueEvent('waiting') onWaiting({ jobId }: { jobId: string }) { this.changes.next({ jobId }); }

  onModuleDestroy(): void {
    this.changes.complete();
  }

  /**
   * Status events of one job: the current state at once, then every change, completing after
   * the first terminal state (completed or failed). Progress events are applied from their own
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
        const p = (c as { progress?: Partial<JobProgress> }).progress;
        if (p && p.stage && last.status !== 'completed' && last.status !== 'failed') {
          return of({ ...last, status: 'processing', stage: p.stage, progress: Math.round(p.progress ?? last.progress), message: p.message ?? last.message, worker_id: p.worker_id ?? last.worker_id, ...(p.chunks_total !== undefined ? { chunks_done: p.chunks_done ?? 0, chunks_total: p.chunks_total } : {}) });
        }
        return from(this.jobs.status(jobId));
      }),
    );
    return concat(of(initial), updates).pipe(
      map((s) => {
        const view = s.status === 'processing' && s.progress < last.progress && last.status === 'processing' ? { ...s, progress: last.progress } : s;
        last = view;
        return view;
      }),
      distinctUntilChanged((a, b) => JSON.stringify(a) === JSON.stringify(b)),
      takeWhile((s) => s.status !== 'completed' && s.status !== 'failed', true),
      map((s) => ({ data: s }) satisfies MessageEvent),
    );
  }
}
