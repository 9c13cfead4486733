import { GatewayError, publicErrorOf } from '../../src/common/gateway-error.js';
import { ENGINE_ERRORS, EngineError, engineCodeForHttpStatus, UnknownEngineError, type EngineErrorCode } from '../../src/engines/engine.error.js';
import { EngineRegistry } from '../../src/engines/engine-registry.js';

describe('EngineError', () => {
  const url = 'http://whisper-rocm.internal:9000/v1/audio/transcriptions';
  const tempPath = '/var/lib/gateway/tmp/job-7f3a/chunk-003.16k.wav';

  it('never shows internal URLs, temp paths or upstream bodies in toPublic() or its JSON', () => {
    const error = new EngineError('ENGINE_UNAVAILABLE', 'whisper-rocm cannot be reached (ECONNREFUSED)', 'whisper-rocm', {
      upstreamStatus: 503,
      details: { url, path: tempPath, body_excerpt: '<html>nginx at 10.1.2.3</html>', cause_message: 'connect ECONNREFUSED 10.1.2.3:9000' },
    });
    expect(error.toPublic()).toEqual({ code: 'ENGINE_UNAVAILABLE', message: 'whisper-rocm cannot be reached (ECONNREFUSED)', engine: 'whisper-rocm', upstream_status: 503 });
    for (const text of [JSON.stringify(error), JSON.stringify({ error }), JSON.stringify(error.toPublic())]) {
      expect(text).not.toContain('whisper-rocm.internal');
      expect(text).not.toContain(tempPath);
      expect(text).not.toContain('10.1.2.3');
    }
    // The record kept in Postgres has them, under `internal`, which publicErrorOf strips again.
    const record = error.toRecord();
    expect(record).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true, engine: 'whisper-rocm', internal: { url, path: tempPath } });
    expect(JSON.stringify(publicErrorOf(record as unknown as Record<string, unknown>))).not.toContain(tempPath);
  });

  it('is a GatewayError whose status and retryable come from the code alone', () => {
    for (const code of Object.keys(ENGINE_ERRORS) as EngineErrorCode[]) {
      const error = new EngineError(code, 'x', 'riva');
      expect(error).toBeInstanceOf(GatewayError);
      expect(error).toMatchObject({ code, status: ENGINE_ERRORS[code].status, retryable: ENGINE_ERRORS[code].retryable, engineId: 'riva', name: 'EngineError' });
    }
  });

  it('answers 5xx for every engine failure but a cancellation, and retries what may pass later', () => {
    const codes = Object.keys(ENGINE_ERRORS) as (keyof typeof ENGINE_ERRORS)[];
    // A fault between gateway and engine is 5xx; only a cancellation (the client's own DELETE) is 409.
    expect(codes.filter((c) => ENGINE_ERRORS[c].status < 500)).toEqual(['ENGINE_CANCELLED']);
    expect(ENGINE_ERRORS.ENGINE_TIMEOUT.status).toBe(504);
    // What may pass later is retried; what fails the same way again is not.
    expect(codes.filter((c) => ENGINE_ERRORS[c].retryable).sort()).toEqual(['ENGINE_BAD_RESPONSE', 'ENGINE_INTERNAL', 'ENGINE_OVERLOADED', 'ENGINE_TIMEOUT', 'ENGINE_UNAVAILABLE']);
  });
});

describe('engineCodeForHttpStatus', () => {
  it('is retryable exactly for 408, 409, 429 and 5xx (the Vercel AI SDK APICallError.isRetryable rule)', () => {
    for (let status = 400; status <= 599; status++) {
      const sdkRetryable = status === 408 || status === 409 || status === 429 || status >= 500;
      expect([status, ENGINE_ERRORS[engineCodeForHttpStatus(status)].retryable]).toEqual([status, sdkRetryable]);
    }
  });

  it.each([
    [401, 'ENGINE_UNAUTHORIZED'], [403, 'ENGINE_UNAUTHORIZED'], [400, 'ENGINE_REJECTED'], [404, 'ENGINE_REJECTED'], [413, 'ENGINE_REJECTED'],
    [422, 'ENGINE_REJECTED'], [408, 'ENGINE_TIMEOUT'], [504, 'ENGINE_TIMEOUT'], [409, 'ENGINE_INTERNAL'], [429, 'ENGINE_OVERLOADED'],
    [500, 'ENGINE_INTERNAL'], [502, 'ENGINE_UNAVAILABLE'], [503, 'ENGINE_UNAVAILABLE'], [507, 'ENGINE_INTERNAL'], [302, 'ENGINE_BAD_RESPONSE'],
  ])('HTTP %i → %s', (status, code) => {
    expect(engineCodeForHttpStatus(status)).toBe(code);
  });
});

describe('UnknownEngineError', () => {
  it('is a 400 UNKNOWN_ENGINE listing the available engines, and keeps requested/available', () => {
    const error = new UnknownEngineError('kaldi', ['pocketsphinx', 'whisperx']);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ status: 400, code: 'UNKNOWN_ENGINE', retryable: false, requested: 'kaldi', available: ['pocketsphinx', 'whisperx'] });
    expect(error.toPublic()).toEqual({
      code: 'UNKNOWN_ENGINE',
      message: "Unknown engine 'kaldi'. Available engines: pocketsphinx, whisperx.",
      available_engines: ['pocketsphinx', 'whisperx'],
    });
  });

  it('is what the registry throws on a miss', () => {
    const error = (() => {
      try {
        new EngineRegistry([]).get('riva');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(UnknownEngineError);
    expect((error as UnknownEngineError).toPublic()).toMatchObject({ available_engines: [], message: "Unknown engine 'riva'. Available engines: (none)." });
  });
});
