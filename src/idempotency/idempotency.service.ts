import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { IdempotencyError } from './idempotency.errors.js';

/**
 * Seconds after which an in-flight claim (a request that began but neither completed nor
 * abandoned — its process died) may be taken over by a new request with the same key. Far longer
 * than any submission takes: uploads are already on local disk when the claim is made.
 */
export const STALE_CLAIM_SEC = 900;

/** How often expired keys are purged, in ms. */
const PURGE_INTERVAL_MS = 3_600_000;

/** A fresh key held by the request that made it: pass it to complete() or abandon(). */
export interface IdempotencyClaim {
  scope: string;
  key: string;
  /** The row's created_at as Postgres prints it (microseconds): a claim taken over after STALE_CLAIM_SEC no longer matches. */
  lease: string;
}

/** What begin() found. */
export type IdempotencyBegin<T> =
  /** No live row: this request owns the key and must complete() or abandon() it. */
  | { outcome: 'fresh'; claim: IdempotencyClaim }
  /** Same key and body already succeeded: answer with `response` again. */
  | { outcome: 'replay'; response: T; jobId: string | null }
  /** Same key, different body (IDEMPOTENCY_KEY_REUSED), or same body still in flight (IDEMPOTENCY_IN_PROGRESS). */
  | { outcome: 'conflict'; code: 'IDEMPOTENCY_KEY_REUSED' | 'IDEMPOTENCY_IN_PROGRESS' };

/**
 * Idempotency keys for submissions: the same `Idempotency-Key` with the same request within
 * IDEMPOTENCY_TTL_HOURS returns the first response (the same job); with a different request, 409.
 *
 * Race safety: the claim is one `INSERT … ON CONFLICT … DO UPDATE … WHERE <expired or stale>`
 * statement, so of any number of concurrent requests with one key exactly one gets `fresh`.
 * A second request arriving while the first is still in flight gets 409 IDEMPOTENCY_IN_PROGRESS at
 * once rather than waiting: a submission can take minutes (probing, storing a large upload), longer
 * than an HTTP request should hang, and the client retries with the same key to get the replay.
 * A failed request abandons its claim, so the client can retry with the same key.
 */
@Injectable()
export class IdempotencyService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(IdempotencyService.name);
  private purgeTimer?: NodeJS.Timeout;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.purgeTimer = setInterval(() => {
      this.purgeExpired().catch((err) => this.logger.warn(`purging expired idempotency keys failed: ${err instanceof Error ? err.message : String(err)}`));
    }, PURGE_INTERVAL_MS);
    this.purgeTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.purgeTimer);
  }

  /**
   * Claims `key` in `scope` for a request whose body hashes to `requestHash` (hex SHA-256), or
   * reports what an earlier request with that key left.
   */
  async begin<T = Record<string, unknown>>(scope: string, key: string, requestHash: string): Promise<IdempotencyBegin<T>> {
    // A row can vanish between the claim and the read (its owner abandoned it); then claim again.
    for (let round = 0; round < 5; round++) {
      const claimed: { lease: string }[] = await this.db.query(
        `INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT (scope, key) DO UPDATE
           SET request_hash = EXCLUDED.request_hash, job_id = NULL, response = NULL, created_at = now()
           WHERE idempotency_keys.created_at < now() - make_interval(hours => $4::int)
              OR (idempotency_keys.response IS NULL AND idempotency_keys.created_at < now() - make_interval(secs => $5::int))
         RETURNING created_at::text AS lease`,
        [scope, key, requestHash, this.config.IDEMPOTENCY_TTL_HOURS, STALE_CLAIM_SEC],
      );
      if (claimed.length > 0) return { outcome: 'fresh', claim: { scope, key, lease: claimed[0].lease } };

      const [row]: { request_hash: string; response: T | null; job_id: string | null }[] = await this.db.query(
        `SELECT request_hash, response, job_id FROM idempotency_keys WHERE scope = $1 AND key = $2`,
        [scope, key],
      );
      if (!row) continue;
      if (row.request_hash !== requestHash) return { outcome: 'conflict', code: 'IDEMPOTENCY_KEY_REUSED' };
      if (row.response === null) return { outcome: 'conflict', code: 'IDEMPOTENCY_IN_PROGRESS' };
      return { outcome: 'replay', response: row.response, jobId: row.job_id };
    }
    throw new Error(`idempotency key ${key} kept changing hands; giving up`);
  }

  /**
   * Stores the response of the request that holds `claim`, to be replayed for the rest of the TTL.
   * @param response the JSON body answered; its `job_id` (when a string) is kept in the job_id column.
   * @returns false when the claim was lost meanwhile (taken over as stale): nothing is stored.
   */
  async complete(claim: IdempotencyClaim, response: object): Promise<boolean> {
    const jobId = (response as { job_id?: unknown }).job_id;
    const [, affected]: [unknown, number] = await this.db.query(
      `UPDATE idempotency_keys SET response = $4::jsonb, job_id = $5
       WHERE scope = $1 AND key = $2 AND created_at = $3::timestamptz AND response IS NULL`,
      [claim.scope, claim.key, claim.lease, JSON.stringify(response), typeof jobId === 'string' ? jobId : null],
    );
    if (affected === 0) this.logger.warn(`idempotency key ${claim.key} was taken over before its response was stored`);
    return affected > 0;
  }

  /** Releases the claim after a failed request, so the client may retry with the same key. */
  async abandon(claim: IdempotencyClaim): Promise<void> {
    await this.db.query(
      `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at = $3::timestamptz AND response IS NULL`,
      [claim.scope, claim.key, claim.lease],
    );
  }

  /**
   * Runs `work` at most once per (scope, key, request) within the TTL: a fresh key runs it and stores
   * its response (abandoning the key if it throws); a replay returns the stored response.
   *
   * @returns the response and whether it is a replay (answer with header `Idempotent-Replayed: true`).
   * @throws IdempotencyError IDEMPOTENCY_KEY_REUSED or IDEMPOTENCY_IN_PROGRESS (HTTP 409); whatever `work` throws.
   */
  async execute<T extends object>(scope: string, key: string, requestHash: string, work: () => Promise<T>): Promise<{ response: T; replayed: boolean }> {
    const begun = await this.begin<T>(scope, key, requestHash);
    if (begun.outcome === 'replay') return { response: begun.response, replayed: true };
    if (begun.outcome === 'conflict') throw conflictError(begun.code, key);
    let response: T;
    try {
      response = await work();
    } catch (err) {
      await this.abandon(begun.claim).catch((e) => this.logger.error(`releasing idempotency key ${key} failed: ${String(e)}`));
      throw err;
    }
    // The job exists now: a failure to record the response must not turn its creation into an error.
    await this.complete(begun.claim, response).catch((e) => this.logger.error(`storing the response of idempotency key ${key} failed: ${String(e)}`));
    return { response, replayed: false };
  }

  /** Deletes keys older than IDEMPOTENCY_TTL_HOURS (they are ignored already). @returns how many. */
  async purgeExpired(): Promise<number> {
    const [, affected]: [unknown, number] = await this.db.query(
      `DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1::int)`,
      [this.config.IDEMPOTENCY_TTL_HOURS],
    );
    return affected;
  }
}

function conflictError(code: 'IDEMPOTENCY_KEY_REUSED' | 'IDEMPOTENCY_IN_PROGRESS', key: string): IdempotencyError {
  return code === 'IDEMPOTENCY_KEY_REUSED'
    ? new IdempotencyError(code, `Idempotency-Key ${JSON.stringify(key)} was already used with a different request; use a new key for a new request`)
    : new IdempotencyError(code, `a request with Idempotency-Key ${JSON.stringify(key)} is still being processed; retry it once that request has answered`, { retry_after_sec: 1 });
}
