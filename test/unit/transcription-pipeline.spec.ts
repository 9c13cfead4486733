import type { EngineCapabilities } from '../../src/engines/engine.spec.js';
import { catalogProblems } from '../../src/transcription/job-catalog.check.js';
import { CATALOG_JOB_NAMES, chunkQueueName, engineForAttempt, parseTranscriptionJobData, QueueName } from '../../src/transcription/job-catalog.js';
import { parseFallbacks } from '../../src/transcription/engine-fallbacks.js';
import { engineChunking } from '../../src/transcription/long-audio/long-audio.pipeline.js';
import { classifyFailure, CANCELLED } from '../../src/transcription/failure.js';
import { GatewayError } from '../../src/common/gateway-error.js';
import { UnknownEngineError } from '../../src/engines/engine-registry.js';
import { StorageNotFoundError } from '../../src/storage/storage.driver.js';

const caps = (over: Partial<EngineCapabilities> = {}): EngineCapabilities => ({
  diarization: false, word_boosting: false, word_timestamps: true, language_detection: false, translation: false, languages: ['en'], models: [],
  max_duration_sec: null, chunking_threshold_sec: null, chunk_duration_sec: null, ...over,
});

describe('engineChunking (the pipeline plan per engine)', () => {
  const defaults = { threshold: 300, target: 120 };

  it('uses the gateway defaults when the engine has none', () => {
    expect(engineChunking(caps(), defaults)).toEqual({ threshold: 300, target: 120 });
  });

  it("uses the engine's own threshold and target", () => {
    expect(engineChunking(caps({ chunking_threshold_sec: 60, chunk_duration_sec: 30 }), defaults)).toEqual({ threshold: 60, target: 30 });
  });

  it("caps both by the engine's per-call limit, the target at 80 % of it", () => {
    expect(engineChunking(caps({ max_duration_sec: 100 }), defaults)).toEqual({ threshold: 100, target: 80 });
  });

  it('never chunks for a whole-file engine (WhisperX diarizes the whole recording)', () => {
    expect(engineChunking(caps({ whole_file: true, max_duration_sec: 10 }), defaults)).toBeNull();
  });
});

describe('job catalog', () => {
  it('reads a stored first step, filling what old payloads lack', () => {
    const data = parseTranscriptionJobData({ transcriptId: 't', engine: 'pocketsphinx', audioKey: 'audio/t/a.wav', options: { language: 'en' } });
    expect(data).toMatchObject({ step: 'transcribe', multichannel: false, options: { language: 'en' } });
  });

  it('reads a merge step and requires its pieces and duration', () => {
    const base = { transcriptId: 't', engine: 'riva', audioKey: 'k', options: {}, multichannel: false };
    const merge = parseTranscriptionJobData({ ...base, step: 'merge', pieces: [{ index: 0, channel: null, offset: 0, core_start: 0, core_end: 5 }], durationSec: 5 });
    expect(merge.step).toBe('merge');
    // Older merge payloads did not record the chunk engine: the requested engine did the chunks.
    expect(merge.step === 'merge' && merge.chunkEngine).toBe('riva');
    expect(() => parseTranscriptionJobData({ ...base, step: 'merge' })).toThrow(/pieces and durationSec/);
    expect(() => parseTranscriptionJobData({ engine: 'riva' })).toThrow(/transcriptId, engine and audioKey/);
  });

  it('gives each engine of a fallback chain its attempts in turn', () => {
    const data = { engine: 'whisperx', fallbacks: ['whisper-rocm', 'pocketsphinx'], attemptsPerEngine: 2 };
    expect([1, 2, 3, 4, 5, 6, 7].map((a) => engineForAttempt(data, a))).toEqual(['whisperx', 'whisperx', 'whisper-rocm', 'whisper-rocm', 'pocketsphinx', 'pocketsphinx', 'pocketsphinx']);
    expect(engineForAttempt({ engine: 'riva' }, 9)).toBe('riva');
  });

  describe('boot check (catalogProblems)', () => {
    const expected = new Map<string, readonly string[]>([
      [QueueName.Transcription, CATALOG_JOB_NAMES[QueueName.Transcription]],
      [chunkQueueName('pocketsphinx'), CATALOG_JOB_NAMES.chunks],
    ]);
    const transcription = { queueName: QueueName.Transcription, handles: ['transcribe'] };
    const chunks = { queueName: 'chunks-pocketsphinx', handles: ['transcribe-chunk'] };

    it('passes when every job name has exactly one handler', () => {
      expect(catalogProblems(expected, [transcription, chunks])).toEqual([]);
    });

    it('names a job without a handler', () => {
      expect(catalogProblems(expected, [transcription])).toEqual(["job 'transcribe-chunk' on queue chunks-pocketsphinx has no handler"]);
    });

    it('names a job with two handlers', () => {
      expect(catalogProblems(expected, [transcription, chunks, { ...chunks }])).toEqual(["job 'transcribe-chunk' on queue chunks-pocketsphinx has 2 handlers"]);
    });

    it('names a handler for a job the catalog does not list', () => {
      expect(catalogProblems(expected, [transcription, chunks, { queueName: QueueName.Transcription, handles: ['merge'] }])).toEqual([
        "a processor handles 'merge' on queue transcription, which the job catalog does not list",
      ]);
    });
  });
});

describe('parseFallbacks (ENGINE_FALLBACKS, parsed once at boot)', () => {
  const registered = (id: string) => ['whisperx', 'whisper-rocm', 'pocketsphinx', 'riva'].includes(id);

  it('maps each engine to its registered fallbacks in order, resolving aliases', () => {
    const chains = parseFallbacks('whisperx:whisper-rocm,pocketsphinx; asr:pocketsphinx', registered);
    expect(chains.get('whisperx')).toEqual(['whisper-rocm', 'pocketsphinx']);
    expect(chains.get('riva')).toEqual(['pocketsphinx']);
  });

  it('leaves out the engine itself and engines this process does not have; the first rule for an engine wins', () => {
    const chains = parseFallbacks('whisperx:whisperx,openai,pocketsphinx;whisperx:riva', registered);
    expect(chains.get('whisperx')).toEqual(['pocketsphinx']);
  });

  it('is empty for an empty setting', () => {
    expect(parseFallbacks('', registered).size).toBe(0);
  });
});

describe('classifyFailure (one rule for retries)', () => {
  class TestEngineError extends GatewayError {
    readonly code = 'ENGINE_TIMEOUT';
    constructor(retryable: boolean) {
      super('the engine did not answer within 30 s', { status: 504, retryable, publicFields: { engine: 'riva' }, details: { url: 'http://10.0.0.7:50051', path: '/tmp/gw/job/piece.wav' } });
    }
  }

  it('takes code and retry flag from a coded error and keeps its private details under internal', () => {
    const f = classifyFailure(new TestEngineError(true), false);
    expect(f).toMatchObject({ retryable: true, message: 'the engine did not answer within 30 s' });
    expect(f.record).toMatchObject({ code: 'ENGINE_TIMEOUT', engine: 'riva', retryable: true, internal: { url: 'http://10.0.0.7:50051' } });
  });

  it('treats an aborted attempt as cancelled, whatever the error', () => {
    expect(classifyFailure(new TestEngineError(true), true)).toBe(CANCELLED);
  });

  it('fails at once when this worker lacks the engine or the audio is gone', () => {
    expect(classifyFailure(new UnknownEngineError('riva', ['pocketsphinx']), false)).toMatchObject({ retryable: false, record: { code: 'ENGINE_NOT_CONFIGURED' } });
    const gone = classifyFailure(new StorageNotFoundError('audio/x/secret-name.wav'), false);
    expect(gone).toMatchObject({ retryable: false, record: { code: 'AUDIO_MISSING', internal: { key: 'audio/x/secret-name.wav' } } });
    expect(gone.message).not.toContain('secret-name');
  });

  it('retries anything else, with its message kept private', () => {
    const f = classifyFailure(new Error('connect ECONNREFUSED 10.1.2.3:5432'), false);
    expect(f.retryable).toBe(true);
    expect(f.record.code).toBe('INTERNAL');
    expect(f.message).not.toContain('10.1.2.3');
    expect(f.record.internal).toEqual({ message: 'connect ECONNREFUSED 10.1.2.3:5432' });
  });
});
