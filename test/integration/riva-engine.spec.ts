import { status } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { EngineError, EngineOptionError } from '../../src/engines/engine.error.js';
import { checkEngineOptions } from '../../src/engines/engine-options.js';
import type { EngineAudio, TranscriptionResult } from '../../src/engines/engine.spec.js';
import { parseRivaEnv } from '../../src/engines/riva/riva.config.js';
import { readWavHeader } from '../../src/audio/wav.js';
import { RivaEngine } from '../../src/engines/riva/riva.engine.js';
import { fixture, scratchDir } from '../support/env.js';
import { realisticResponse, RivaTestServer } from '../support/riva-server.js';

const run = promisify(execFile);

/** The adapter against the Riva-protocol test server (a real gRPC server built from the project's proto). */
describe('RivaEngine against a Riva-protocol gRPC server', () => {
  let server: RivaTestServer;
  const engines: RivaEngine[] = [];

  beforeAll(async () => {
    server = await RivaTestServer.start();
  });
  afterAll(() => server.stop());
  beforeEach(() => {
    server.received.length = 0;
    server.healthChecks.length = 0;
    server.script.length = 0;
    server.healthStatus = 'SERVING';
  });
  afterEach(() => engines.splice(0).forEach((e) => e.close()));

  function engine(env: Record<string, string> = {}, target: RivaTestServer = server): RivaEngine {
    const { value, problems } = parseRivaEnv({ RIVA_URI: target.uri, ...env });
    expect(problems).toEqual([]);
    const e = new RivaEngine(value);
    engines.push(e);
    return e;
  }

  const audio = (file: string, durationSec: number): EngineAudio => ({ path: file, duration_sec: durationSec, max_volume_db: -3 });
  const ctx = (signal: AbortSignal = new AbortController().signal) => ({ signal });
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error('expected the call to fail');
      },
      (err: unknown) => {
        expect(err).toBeInstanceOf(EngineError);
        return err as EngineError;
      },
    );

  it('sends the documented RecognitionConfig, metadata and raw PCM, and normalizes the response (ms → s, speakers 1..N → 0..N-1)', async () => {
    const model = 'parakeet-1.1b-en-US-asr-offline-asr-bls-ensemble';
    const riva = engine({ RIVA_MODEL: model, RIVA_METADATA: 'authorization=Bearer nvapi-test, Function-ID=fn-123' });
    const result = await riva.transcribe(
      audio(fixture('jfk.wav'), 11),
      {
        language: 'en-US',
        diarization: { enabled: true, max_speakers: 3 },
        word_boosts: [
          { phrases: ['Kennedy', 'ask not'], boost: 40 },
          { phrases: ['country'], boost: -20 },
        ],
      },
      ctx(),
    );

    expect(server.received).toHaveLength(1);
    const got = server.received[0];
    expect(got.config).toMatchObject({
      encoding: 'LINEAR_PCM',
      sample_rate_hertz: 16000,
      audio_channel_count: 1,
      language_code: 'en-US',
      max_alternatives: 1,
      enable_word_time_offsets: true,
      enable_automatic_punctuation: true,
      model,
      diarization_config: { enable_speaker_diarization: true, max_speaker_count: 3 },
      speech_contexts: [
        { phrases: ['Kennedy', 'ask not'], boost: 40 },
        { phrases: ['country'], boost: -20 },
      ],
    });
    // jfk.wav carries a LIST chunk (78-byte header): exactly the 11 s of samples are sent, no header.
    expect(statSync(fixture('jfk.wav')).size).toBe(352_078);
    expect(got.audioBytes).toBe(11 * 32_000);
    expect(got.metadata).toMatchObject({ authorization: 'Bearer nvapi-test', 'function-id': 'fn-123' });
    expect(got.requestId).toMatch(/^[0-9a-f-]{36}$/);

    // Every word time is the server's integer ms / 1000; each Riva result is one segment.
    const wire = realisticResponse(got.audioBytes, got.config, got.requestId) as {
      results: { alternatives: { transcript: string; words: { start_time: number; end_time: number; word: string; speaker_tag: number }[] }[] }[];
    };
    expect(wire.results.length).toBe(3);
    expect(result.segments).toHaveLength(3);
    result.segments.forEach((segment, i) => {
      const alt = wire.results[i].alternatives[0];
      expect(segment.text).toBe(alt.transcript.trim());
      expect(segment.words.map((w) => [w.word, w.start, w.end, w.speaker_tag])).toEqual(
        alt.words.map((w) => [w.word, w.start_time / 1000, w.end_time / 1000, w.speaker_tag - 1]),
      );
      expect(segment.start).toBe(segment.words[0].start);
      expect(segment.end).toBe(segment.words[segment.words.length - 1].end);
      for (const w of segment.words) expect(w.confidence).toBeGreaterThan(0.8);
      expect(segment.confidence).toBeGreaterThan(0.8);
      expect(segment.confidence).toBeLessThanOrEqual(1);
    });
    // Results alternate speakers 1, 2, 1; the first one's last word is speaker 2, yet the majority keeps the segment on speaker 0.
    expect(result.segments.map((s) => s.speaker_tag)).toEqual([0, 1, 0]);
    expect(result.segments[0].words.at(-1)!.speaker_tag).toBe(1);
    expect(result.segments[0].text).toBe('Good morning, thanks for calling.');
    expect(result).toMatchObject({
      text: result.segments.map((s) => s.text).join(' '),
      language: 'en-US',
      duration_sec: 11,
      warnings: [],
      engine: { id: 'riva', model },
    });
    const all = result.segments.flatMap((s) => s.words);
    all.forEach((w, i) => {
      expect(w.end).toBeGreaterThanOrEqual(w.start);
      expect(w.end).toBeLessThanOrEqual(11);
      if (i > 0) expect(w.start).toBeGreaterThanOrEqual(all[i - 1].start);
    });
  });

  it('leaves diarization and boosting out of the config when not asked, honours RIVA_AUTOMATIC_PUNCTUATION=false, and warns about a prompt', async () => {
    const riva = engine({ RIVA_AUTOMATIC_PUNCTUATION: 'false' });
    const result = await riva.transcribe(audio(fixture('libri_0870.wav'), 7.1), { language: 'en', prompt: 'Sense and Sensibility' }, ctx());
    const got = server.received[0];
    expect(got.config).toMatchObject({ language_code: 'en-US', model: '', enable_automatic_punctuation: false, diarization_config: null, speech_contexts: [] });
    expect(result.segments.length).toBe(2);
    expect(result.segments.every((s) => s.speaker_tag === null && s.words.every((w) => w.speaker_tag === null))).toBe(true);
    expect(result.segments[0].text).toBe('good morning thanks for calling');
    expect(result.engine.model).toBeNull();
    expect(result.warnings).toEqual([expect.stringMatching(/prompt/)]);
  });

  it('a long recording cut into chunks with ffmpeg: every chunk reaches the server and its times come back in seconds within the chunk', async () => {
    const riva = engine({ RIVA_CHUNKING_THRESHOLD: '30', RIVA_CHUNK_DURATION: '10' });
    const { chunking_threshold_sec, chunk_duration_sec } = riva.capabilities;
    expect([chunking_threshold_sec, chunk_duration_sec]).toEqual([30, 10]);
    const dir = scratchDir('riva-chunks');
    const long = path.join(dir, 'long.wav');
    // 32 s dialogue + 11 s speech = 43 s, above the threshold: the gateway would chunk it.
    await run('ffmpeg', ['-v', 'error', '-i', fixture('tts/dialogue_2spk.wav'), '-i', fixture('jfk.wav'), '-filter_complex', '[0:a][1:a]concat=n=2:v=0:a=1', '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', '-fflags', '+bitexact', long]);
    const totalBytes = (await readWavHeader(long)).dataBytes;
    expect(totalBytes / 32_000).toBeGreaterThan(chunking_threshold_sec!);
    // Sample-exact pieces of chunk_duration_sec (1600-sample frames divide 10 s exactly; p=0: the last frame is not padded).
    await run('ffmpeg', ['-v', 'error', '-i', long, '-af', 'asetnsamples=n=1600:p=0', '-c:a', 'pcm_s16le', '-fflags', '+bitexact', '-f', 'segment', '-segment_time', String(chunk_duration_sec), '-reset_timestamps', '1', path.join(dir, 'piece%03d.wav')]);
    const pieces = readdirSync(dir).filter((f) => f.startsWith('piece')).sort();
    expect(pieces).toHaveLength(5);

    const results: TranscriptionResult[] = [];
    for (const [i, piece] of pieces.entries()) {
      const bytes = (await readWavHeader(path.join(dir, piece))).dataBytes;
      results.push(await riva.transcribe(audio(path.join(dir, piece), bytes / 32_000), { diarization: { enabled: true } }, ctx()));
      expect(server.received[i].audioBytes).toBe(bytes);
      expect(server.received[i].config.diarization_config).toEqual({ enable_speaker_diarization: true, max_speaker_count: 8 });
    }
    expect(server.received.map((r) => r.audioBytes)).toEqual([320_000, 320_000, 320_000, 320_000, totalBytes - 4 * 320_000]);
    results.forEach((r, i) => {
      expect(r.duration_sec).toBe(server.received[i].audioBytes / 32_000);
      const words = r.segments.flatMap((s) => s.words);
      expect(words.length).toBeGreaterThan(0);
      expect(words[0].start).toBeLessThan(1);
      expect(Math.max(...words.map((w) => w.end))).toBeLessThanOrEqual(r.duration_sec);
      expect(Math.max(...words.map((w) => w.end))).toBeGreaterThan(r.duration_sec - 1);
    });
    // With each chunk's offset (i × chunk_duration) added, as the chunker does, times run forward across the recording.
    const global = results.flatMap((r, i) => r.segments.flatMap((s) => s.words.map((w) => w.start + i * chunk_duration_sec!)));
    expect(global).toEqual([...global].sort((a, b) => a - b));
    expect(global.at(-1)!).toBeLessThan(totalBytes / 32_000);
  });

  it('UNAVAILABLE once, then success: the first call fails as retryable ENGINE_UNAVAILABLE, the retry succeeds', async () => {
    const riva = engine();
    server.script.push({ kind: 'error', code: status.UNAVAILABLE, message: 'Triton server not ready' });
    const err = await failure(riva.transcribe(audio(fixture('goforward.wav'), 2.79), {}, ctx()));
    expect(err).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true, engineId: 'riva' });
    expect(err.details).toMatchObject({ grpc_code: 14, grpc_status: 'UNAVAILABLE', grpc_details: 'Triton server not ready', method: 'Recognize', uri: server.uri });
    // Public: the status, not the server's message nor its address.
    expect(err.toJSON()).toEqual({ code: 'ENGINE_UNAVAILABLE', message: 'Riva Recognize failed with gRPC status UNAVAILABLE', engine: 'riva', upstream_status: 'UNAVAILABLE' });
    expect(JSON.stringify(err)).not.toContain(server.uri);
    const result = await riva.transcribe(audio(fixture('goforward.wav'), 2.79), {}, ctx());
    expect(result.segments.length).toBeGreaterThan(0);
    expect(server.received).toHaveLength(2);
  });

  it('INVALID_ARGUMENT fails for good as ENGINE_REJECTED with the server message in the details', async () => {
    server.script.push({ kind: 'error', code: status.INVALID_ARGUMENT, message: 'Error: Unavailable model requested given these parameters: language_code=xx-XX' });
    const err = await failure(engine().transcribe(audio(fixture('goforward.wav'), 2.79), { language: 'xx-XX' }, ctx()));
    expect(err).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false });
    expect(err.toRecord()).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false, engine: 'riva', upstream_status: 'INVALID_ARGUMENT', internal: { grpc_status: 'INVALID_ARGUMENT', grpc_details: expect.stringContaining('language_code=xx-XX') } });
    expect(JSON.stringify(err)).not.toContain('language_code=xx-XX');
    expect(server.received[0].config.language_code).toBe('xx-XX');
  });

  it('a server slower than RIVA_DEADLINE_MS gives a retryable ENGINE_TIMEOUT', async () => {
    server.script.push({ kind: 'delay', ms: 5000 });
    const err = await failure(engine({ RIVA_DEADLINE_MS: '300' }).transcribe(audio(fixture('goforward.wav'), 2.79), {}, ctx()));
    expect(err).toMatchObject({ code: 'ENGINE_TIMEOUT', retryable: true });
    expect(err.details).toMatchObject({ grpc_status: 'DEADLINE_EXCEEDED' });
    expect(server.received).toHaveLength(1);
  });

  it.each([
    [status.RESOURCE_EXHAUSTED, 'ENGINE_OVERLOADED', true],
    [status.ABORTED, 'ENGINE_OVERLOADED', true],
    [status.INTERNAL, 'ENGINE_INTERNAL', true],
    [status.UNKNOWN, 'ENGINE_INTERNAL', true],
    [status.UNAUTHENTICATED, 'ENGINE_UNAUTHORIZED', false],
    [status.PERMISSION_DENIED, 'ENGINE_UNAUTHORIZED', false],
    [status.NOT_FOUND, 'ENGINE_REJECTED', false],
    [status.FAILED_PRECONDITION, 'ENGINE_REJECTED', false],
    [status.UNIMPLEMENTED, 'ENGINE_REJECTED', false],
  ])('gRPC status %i maps to %s (retryable %s)', async (code, expected, retryable) => {
    server.script.push({ kind: 'error', code, message: 'scripted' });
    const err = await failure(engine().transcribe(audio(fixture('goforward.wav'), 2.79), {}, ctx()));
    expect(err).toMatchObject({ code: expected, retryable });
    expect(err.details).toMatchObject({ grpc_code: code });
  });

  it('an unreachable server is a retryable ENGINE_UNAVAILABLE', async () => {
    const gone = await RivaTestServer.start();
    const riva = engine({}, gone);
    await gone.stop();
    const err = await failure(riva.transcribe(audio(fixture('goforward.wav'), 2.79), {}, ctx()));
    expect(err).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true });
  });

  it('aborting the signal cancels the call in flight: ENGINE_CANCELLED, not retryable', async () => {
    server.script.push({ kind: 'delay', ms: 10_000 });
    const controller = new AbortController();
    const pending = failure(engine().transcribe(audio(fixture('goforward.wav'), 2.79), {}, ctx(controller.signal)));
    while (server.received.length === 0) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    expect(await pending).toMatchObject({ code: 'ENGINE_CANCELLED', retryable: false });
  });

  it('a response over RIVA_MAX_RECEIVE_MESSAGE_BYTES fails as non-retryable ENGINE_REJECTED, not as an overload', async () => {
    const huge = 'word '.repeat(300_000);
    server.script.push({ kind: 'respond', response: { results: [{ alternatives: [{ transcript: huge }] }] } });
    const err = await failure(engine({ RIVA_MAX_RECEIVE_MESSAGE_BYTES: String(1024 * 1024) }).transcribe(audio(fixture('goforward.wav'), 2.79), {}, ctx()));
    expect(err).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false });
    expect(err.details).toMatchObject({ grpc_status: 'RESOURCE_EXHAUSTED' });
  });

  it('refuses, without calling Riva, audio that is not 16 kHz mono 16-bit or that exceeds the send limit', async () => {
    const stereo = await failure(engine().transcribe(audio(fixture('fw_stereo_diarization.wav'), 5), {}, ctx()));
    expect(stereo).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false, message: expect.stringMatching(/2 channel/) });
    const notWav = path.join(scratchDir('riva'), 'x.wav');
    writeFileSync(notWav, 'ID3 not a wav at all');
    const notRiff = await failure(engine().transcribe(audio(notWav, 1), {}, ctx()));
    expect(notRiff).toMatchObject({ code: 'ENGINE_REJECTED', message: expect.stringMatching(/RIFF/), details: { path: notWav } });
    expect(notRiff.message).not.toContain(notWav);
    const missing = await failure(engine().transcribe(audio(`${notWav}.gone`, 1), {}, ctx()));
    expect(missing).toMatchObject({ code: 'ENGINE_INTERNAL', retryable: true });
    expect(JSON.stringify(missing)).not.toContain(notWav);
    // 1 MiB send limit leaves 24.5 s per request; the 32 s dialogue does not fit.
    const { value } = parseRivaEnv({ RIVA_URI: server.uri, RIVA_MAX_SEND_MESSAGE_BYTES: String(1024 * 1024), RIVA_CHUNK_DURATION: '10', RIVA_CHUNKING_THRESHOLD: '20' });
    const small = new RivaEngine(value);
    engines.push(small);
    expect(small.capabilities.max_duration_sec).toBe(24);
    expect(await failure(small.transcribe(audio(fixture('tts/dialogue_2spk.wav'), 32), {}, ctx()))).toMatchObject({ code: 'ENGINE_REJECTED', retryable: false, message: expect.stringMatching(/must be chunked/) });
    expect(server.received).toHaveLength(0);
  });

  it('silent audio: no results, no error, a warning', async () => {
    const silent = path.join(scratchDir('riva'), 'silence.wav');
    await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', '3', '-c:a', 'pcm_s16le', silent]);
    const result = await engine().transcribe(audio(silent, 3), {}, ctx());
    expect(result).toMatchObject({ text: '', segments: [], duration_sec: 3, warnings: ['Riva recognised no speech in this audio'] });
  });

  describe('health', () => {
    const probe = (e: RivaEngine) => e.health(AbortSignal.timeout(5000));

    it('SERVING: available, with the uri, deployed models and their languages; then a bare language picks the server’s regional code', async () => {
      const riva = engine({ RIVA_METADATA: 'authorization=Bearer t' });
      // Before a probe, only RIVA_LANGUAGE is known, and no model (RIVA_MODEL is unset).
      expect(riva.capabilities.languages).toEqual(['en-US']);
      expect(riva.capabilities.models).toEqual([]);
      expect(() => checkEngineOptions(riva, { language: 'de' })).toThrow(EngineOptionError);
      const health = await probe(riva);
      expect(health).toMatchObject({
        available: true,
        internal: { uri: server.uri },
        details: {
          ssl: false,
          serving_status: 'SERVING',
          models: ['parakeet-1.1b-en-US-asr-offline-asr-bls-ensemble', 'parakeet-1.1b-multi-asr-offline-asr-bls-ensemble'],
          languages: ['en-US', 'es-US', 'de-DE'],
        },
      });
      expect(health.details).not.toHaveProperty('uri');
      expect(server.healthChecks).toEqual([{ service: '', metadata: expect.objectContaining({ authorization: 'Bearer t' }) }]);
      // The deployed models' languages are now capabilities: a submit for them passes the check, others still fail it.
      expect(riva.capabilities.languages).toEqual(['en-US', 'es-US', 'de-DE']);
      expect(() => checkEngineOptions(riva, { language: 'de' })).not.toThrow();
      expect(() => checkEngineOptions(riva, { language: 'fr-FR' })).toThrow(EngineOptionError);
      // So are the deployed models (what /engines lists and a request may name).
      expect(riva.capabilities.models).toEqual(['parakeet-1.1b-en-US-asr-offline-asr-bls-ensemble', 'parakeet-1.1b-multi-asr-offline-asr-bls-ensemble']);
      expect(() => checkEngineOptions(riva, { model: 'parakeet-1.1b-multi-asr-offline-asr-bls-ensemble' })).not.toThrow();
      expect(() => checkEngineOptions(riva, { model: 'conformer-xx' })).toThrow(EngineOptionError);
      await riva.transcribe(audio(fixture('goforward.wav'), 2.79), { language: 'de' }, ctx());
      expect(server.received[0].config.language_code).toBe('de-DE');
    });

    it('NOT_SERVING: unavailable with the reason', async () => {
      server.healthStatus = 'NOT_SERVING';
      expect(await probe(engine())).toMatchObject({ available: false, message: 'Riva reports NOT_SERVING', details: { serving_status: 'NOT_SERVING' } });
    });

    it('RIVA_MODEL not among the deployed models: unavailable, naming those that are', async () => {
      expect(await probe(engine({ RIVA_MODEL: 'conformer-xx' }))).toMatchObject({ available: false, message: expect.stringContaining('parakeet-1.1b-en-US-asr-offline-asr-bls-ensemble') });
    });

    it('server down: unavailable, never a rejection', async () => {
      const gone = await RivaTestServer.start();
      const riva = engine({}, gone);
      await gone.stop();
      const down = await probe(riva);
      expect(down).toMatchObject({ available: false, message: 'health check failed: UNAVAILABLE', internal: { uri: gone.uri } });
      expect(JSON.stringify([down.message, down.details])).not.toContain(String(gone.port));
    });
  });

  it('TLS with RIVA_SSL_CA_FILE and metadata, as for an NVIDIA-hosted endpoint; an untrusted certificate is UNAVAILABLE', async () => {
    const dir = scratchDir('riva-tls');
    const [cert, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost']);
    const tlsServer = await RivaTestServer.start({ cert: readFileSync(cert), key: readFileSync(key) });
    try {
      const env = { RIVA_URI: `localhost:${tlsServer.port}`, RIVA_USE_SSL: 'true', RIVA_METADATA: 'authorization=Bearer nvapi-abc,function-id=1598d209' };
      const parsed = parseRivaEnv({ ...env, RIVA_SSL_CA_FILE: cert });
      expect(parsed.problems).toEqual([]);
      const riva = new RivaEngine(parsed.value);
      engines.push(riva);
      const result = await riva.transcribe(audio(fixture('goforward.wav'), 2.79), {}, ctx());
      expect(result.segments.length).toBeGreaterThan(0);
      expect(tlsServer.received[0].metadata).toMatchObject({ authorization: 'Bearer nvapi-abc', 'function-id': '1598d209' });
      expect(await riva.health(AbortSignal.timeout(5000))).toMatchObject({ available: true, details: { ssl: true } });

      const untrusted = new RivaEngine(parseRivaEnv(env).value);
      engines.push(untrusted);
      expect(await failure(untrusted.transcribe(audio(fixture('goforward.wav'), 2.79), {}, ctx()))).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true });
      expect(tlsServer.received).toHaveLength(1);
    } finally {
      await tlsServer.stop();
    }
  });
});
