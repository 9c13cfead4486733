import { Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { AppConfig } from '../config/app-config.js';
import { ANONYMOUS_KEY_LABEL, apiKeyLabel } from '../metrics/metrics.service.js';

/** Keys shorter than this are accepted but reported at boot: they are within reach of guessing. */
export const MIN_RECOMMENDED_KEY_LENGTH = 16;

/**
 * The configured keys: API_KEYS (separated by commas or whitespace) plus ASR_TOKEN (seed 003's
 * single bearer token), trimmed, empty entries dropped, duplicates removed.
 */
export function configuredApiKeys(config: Pick<AppConfig, 'API_KEYS' | 'ASR_TOKEN'>): string[] {
  const keys = [...config.API_KEYS.split(/[\s,]+/), config.ASR_TOKEN].map((k) => k.trim()).filter((k) => k !== '');
  return [...new Set(keys)];
}

/**
 * The key a request presents, or null. `X-API-Key: <key>` wins over `Authorization: Bearer <key>`
 * (so that a proxy in front may use Authorization for its own scheme); the Bearer scheme name is
 * case-insensitive (RFC 9110 §11.1). Another scheme (Basic, …) counts as no key. Surrounding
 * whitespace is ignored; an empty value counts as no key.
 */
export function extractApiKey(headers: IncomingHttpHeaders): string | null {
  const header = headers['x-api-key'];
  const direct = (Array.isArray(header) ? header[0] : header)?.trim();
  if (direct) return direct;
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '');
  return match ? match[1] : null;
}

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Whether `presented` equals `expectedDigest`'s key, in time that depends on neither key:
 * both sides are compared as SHA-256 digests (always 32 bytes, so not even the length leaks)
 * with `crypto.timingSafeEqual`.
 */
export function keyMatches(presented: string, expectedDigest: Buffer): boolean {
  return timingSafeEqual(sha256(presented), expectedDigest);
}

/** Who a request is, as far as access control is concerned. */
export type ApiKeyCheck =
  /** Authentication is off (no keys configured). */
  | { status: 'open'; label: typeof ANONYMOUS_KEY_LABEL }
  /** A configured key; `label` is its short hash (see apiKeyLabel), never the key. */
  | { status: 'valid'; label: string }
  | { status: 'missing' }
  | { status: 'invalid' };

/**
 * The accepted API keys, held only as SHA-256 digests after construction. Shared by the access
 * guard and the rate limiter so both identify a request the same way whatever order they run in.
 */
@Injectable()
export class ApiKeys {
  private readonly digests: Buffer[];
  /** Short, non-reversible label of each configured key (same order as the digests). */
  readonly labels: string[];
  /** Labels of configured keys shorter than MIN_RECOMMENDED_KEY_LENGTH. */
  readonly weakLabels: string[];

  constructor(config: AppConfig) {
    const keys = configuredApiKeys(config);
    this.digests = keys.map(sha256);
    this.labels = keys.map(apiKeyLabel);
    this.weakLabels = keys.filter((k) => k.length < MIN_RECOMMENDED_KEY_LENGTH).map(apiKeyLabel);
  }

  /** False when no key is configured: every endpoint is open (the embedded default). */
  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /**
   * Checks the key a request's headers present. Compares against every configured key without
   * stopping at a match, so the time taken does not tell which key (or how many) matched.
   */
  check(headers: IncomingHttpHeaders): ApiKeyCheck {
    if (!this.enabled) return { status: 'open', label: ANONYMOUS_KEY_LABEL };
    const presented = extractApiKey(headers);
    if (presented === null) return { status: 'missing' };
    const digest = sha256(presented);
    let matched = -1;
    for (let i = 0; i < this.digests.length; i++) if (timingSafeEqual(digest, this.digests[i]) && matched < 0) matched = i;
    return matched < 0 ? { status: 'invalid' } : { status: 'valid', label: this.labels[matched] };
  }
}
