import { OnQueueEvent, QueueEventsHost, QueueEventsListener } from '@nestjs/bullmq';
import type { MessageEvent, OnModuleDestroy } from '@nestjs/common';
import { Injectable } from '@nestjs/common';
import { concat, distinctUntilChanged, exhaustMap, filter, from, interval, map, merge, Observable, of, Subject, takeWhile } from 'rxjs';
import type { JobStatusView } from './dto/job-views.js';
import { QueueName } from './jobs.constants.js';
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
  private readonly changes = new Subject<string>();

  constructor(private readonly jobs: JobsService) {
    super();
  }

  @OnQueueEvent('progress') onProgress({ jobId }: { jobId: string }) { this.changes.next(jobId); }
  @OnQueueEvent('active') onActive({ jobId }: { jobId: string }) { this.changes.next(jobId); }
  @OnQueueEvent('completed') onCompleted({ jobId }: { jobId: string }) { this.changes.next(jobId); }
  @OnQueueEvent('failed') onFailed({ jobId }: { jobId: string }) { this.changes.next(jobId); }
  @OnQueueEvent('delayed') onDelayed({ jobId }: { jobId: string }) { this.changes.next(jobId); }
  @OnQueueEvent('waiting') onWaiting({ jobId }: { jobId: string }) { this.changes.next(jobId); }

  onModuleDestroy(): void {
    this.changes.complete();
  }

  /**
   * Status events of one job: the current state at once, then every change, completing after
   * the first terminal state (completed or failed). Unsubscribing (client gone) tears down the
   * per-subscriber filter and timer; nothing else holds a reference to the subscriber.
   *
   * @param initial the status already read by the caller (so an unknown job is a 404 before streaming starts).
   */
  stream(jobId: string, initial: JobStatusView): Observable<MessageEvent> {
    // One immediate re-read after subscribing closes the gap between the caller's read and the subscription.
    const updates = merge(this.changes.pipe(filter((id) => id === jobId)), interval(RESYNC_INTERVAL_MS), of(0)).pipe(
      // exhaustMap: while one re-read is in flight, further signals are covered by it.
      exhaustMap(() => from(this.jobs.status(jobId))),
    );
    return concat(of(initial), updates).pipe(
      distinctUntilChanged((a, b) => JSON.stringify(a) === JSON.stringify(b)),
      takeWhile((s) => s.status !== 'completed' && s.status !== 'failed', true),
      map((s) => ({ data: s }) satisfies MessageEvent),
    );
  }
}
