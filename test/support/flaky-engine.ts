import { ENGINE_ERRORS, EngineError, type EngineErrorCode } from '../../src/engines/engine.error.js';
import type { EngineAudio, TranscribeContext, TranscribeOptions, TranscriptionEngine, TranscriptionResult } from '../../src/engines/engine.spec.js';

/**
 * Wraps a real engine and fails its first `failures` calls with the given EngineError, to
 * exercise the job lifecycle (retries, backoff, final failure) around a real transcription.
 * Counts every call.
 */
export class FlakyEngine implements TranscriptionEngine {
  calls = 0;
  readonly id: string;
  readonly displayName = 'flaky wrapper (tests)';

  constructor(
    private readonly inner: TranscriptionEngine,
    private readonly failures: number,
    private readonly error: { code: EngineErrorCode; retryable: boolean },
    id?: string,
  ) {
    this.id = id ?? inner.id;
    // The code alone decides retryable; a test that states the opposite would test nothing.
    if (ENGINE_ERRORS[error.code].retryable !== error.retryable) {
      throw new Error(`${error.code} is ${ENGINE_ERRORS[error.code].retryable ? '' : 'not '}retryable (ENGINE_ERRORS)`);
    }
  }

  get capabilities() {
    return this.inner.capabilities;
  }

  health(signal: AbortSignal) {
    return this.inner.health(signal);
  }

  async transcribe(audio: EngineAudio, options: TranscribeOptions, context: TranscribeContext): Promise<TranscriptionResult> {
    this.calls++;
    if (this.calls <= this.failures) {
      throw new EngineError(this.error.code, `injected failure ${this.calls}`, this.id, { details: { injected: true } });
    }
    return this.inner.transcribe(audio, options, context);
  }
}
