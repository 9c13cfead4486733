import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { GatewayError } from '../../src/common/gateway-error.js';
import { IDEMPOTENCY_ERROR_STATUS, IdempotencyError } from '../../src/idempotency/idempotency.errors.js';
import { canonicalJson, hashUpload, idempotencyRequestHash, parseIdempotencyKey } from '../../src/idempotency/request-hash.js';
import { scratchDir } from '../support/env.js';

describe('Idempotency-Key header', () => {
  it('accepts 1–255 printable ASCII characters and treats an absent header as none', () => {
    expect(parseIdempotencyKey(undefined)).toBeNull();
    expect(parseIdempotencyKey('a')).toBe('a');
    expect(parseIdempotencyKey('3f1c8a52-1b7e-4c1e-9d7a-2f3b4c5d6e7f')).toBe('3f1c8a52-1b7e-4c1e-9d7a-2f3b4c5d6e7f');
    expect(parseIdempotencyKey('order 42/retry#1 ~!')).toBe('order 42/retry#1 ~!');
    expect(parseIdempotencyKey('k'.repeat(255))).toHaveLength(255);
  });

  it.each([[''], ['k'.repeat(256)], ['clé'], ['tab\there'], ['line\nbreak'], [['a', 'b']]])('refuses %j with 400 IDEMPOTENCY_KEY_INVALID', (value) => {
    expect(() => parseIdempotencyKey(value)).toThrow(IdempotencyError);
    try {
      parseIdempotencyKey(value);
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toMatchObject({ code: 'IDEMPOTENCY_KEY_INVALID', status: 400, retryable: false });
    }
  });

  it('answers each code with the status of its table: 400 for a bad key, 409 for conflicts', () => {
    expect(IDEMPOTENCY_ERROR_STATUS).toEqual({ IDEMPOTENCY_KEY_INVALID: 400, IDEMPOTENCY_KEY_REUSED: 409, IDEMPOTENCY_IN_PROGRESS: 409 });
    expect(new IdempotencyError('IDEMPOTENCY_IN_PROGRESS', 'busy', { retry_after_sec: 1 }).toPublic()).toEqual({ code: 'IDEMPOTENCY_IN_PROGRESS', message: 'busy', retry_after_sec: 1 });
  });
});

describe('request hash', () => {
  it('canonical JSON sorts keys at every level and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: undefined }], c: 'x' }, u: undefined })).toBe('{"a":{"c":"x","d":[3,{"z":1}]},"b":1}');
    expect(canonicalJson([undefined, null])).toBe('[null,null]');
  });

  it('streams the SHA-256 of an upload', async () => {
    const file = path.join(scratchDir('idem'), 'a.bin');
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 7, 0x5a);
    writeFileSync(file, bytes);
    expect(await hashUpload(file)).toBe(createHash('sha256').update(bytes).digest('hex'));
    await expect(hashUpload(`${file}.missing`)).rejects.toThrow(/ENOENT/);
  });

  it('is equal for the same request whatever the field order, and differs on any change', () => {
    const base = { route: 'transcribe', fields: { language: 'en', engine: 'pocketsphinx' }, file: { sha256: 'ab'.repeat(32), name: 'a.wav' } };
    const h = idempotencyRequestHash(base);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(idempotencyRequestHash({ ...base, fields: { engine: 'pocketsphinx', language: 'en', model: undefined } })).toBe(h);
    expect(idempotencyRequestHash({ ...base, fields: { language: 'de', engine: 'pocketsphinx' } })).not.toBe(h);
    expect(idempotencyRequestHash({ ...base, route: 'transcribe/whisperx' })).not.toBe(h);
    expect(idempotencyRequestHash({ ...base, file: { sha256: 'cd'.repeat(32), name: 'a.wav' } })).not.toBe(h);
    expect(idempotencyRequestHash({ ...base, file: { sha256: 'ab'.repeat(32), name: 'b.wav' } })).not.toBe(h);
    expect(idempotencyRequestHash({ ...base, file: null })).not.toBe(h);
  });
});
