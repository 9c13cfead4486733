import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { IdempotencyError } from './idempotency.errors.js';

/** 1–255 printable ASCII characters (0x20–0x7E), the header's accepted form. */
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

/**
 * The `Idempotency-Key` header, validated.
 *
 * @param header the raw header value (`req.headers['idempotency-key']`).
 * @returns the key, or null when the header is absent.
 * @throws IdempotencyError IDEMPOTENCY_KEY_INVALID (HTTP 400) when it is empty, over 255 characters,
 *   sent more than once, or has characters outside printable ASCII.
 */
export function parseIdempotencyKey(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  if (typeof header !== 'string' || !KEY_PATTERN.test(header)) {
    throw new IdempotencyError('IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key must be 1 to 255 printable ASCII characters (a UUID is a good choice), sent once');
  }
  return header;
}

/**
 * Hex SHA-256 of a file, streamed (uploads may be up to MAX_FILE_SIZE, 2 GiB by default).
 * @throws the stream's error (ENOENT when the file is gone).
 */
export async function hashUpload(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * JSON with object keys sorted at every level and `undefined` members dropped, so that the same
 * fields hash the same whatever order the client (or the DTO transform) produced them in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** What identifies a submission's body for idempotency. */
export interface IdempotentRequest {
  /** The route, including a path parameter that changes the request (e.g. `transcribe/whisperx`). */
  route: string;
  /** The form fields besides the file (the validated DTO). */
  fields: object;
  /** The uploaded file: its SHA-256 (hashUpload) and client file name; null when none was sent. */
  file: { sha256: string; name: string } | null;
}

/**
 * Hex SHA-256 of the canonical JSON of the route, the form fields and the file's hash and name:
 * the same key with the same request returns the same job, with any difference 409
 * IDEMPOTENCY_KEY_REUSED.
 */
export function idempotencyRequestHash(request: IdempotentRequest): string {
  return createHash('sha256').update(canonicalJson({ v: 1, route: request.route, fields: request.fields, file: request.file }), 'utf8').digest('hex');
}
