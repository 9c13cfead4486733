import os from 'node:os';

/** `host:pid`: identifies the worker process in transcript_jobs.worker_id and in progress events. */
export const WORKER_ID = `${os.hostname()}:${process.pid}`;
