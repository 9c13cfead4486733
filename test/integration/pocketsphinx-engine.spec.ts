import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { AudioService } from '../../src/audio/audio.service.js';
import { EngineError } from '../../src/engines/engine.error.js';
import { PocketsphinxConfig } from '../../src/engines/pocketsphinx/pocketsphinx.config.js';
import { PocketsphinxEngine } from '../../src/engines/pocketsphinx/pocketsphinx.engine.js';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { references, wordErrorRate } from '../support/wer.js';

describe('PocketsphinxEngine (real pocketsphinx_continuous)', () => {
  const engine = new PocketsphinxEngine(new PocketsphinxConfig());
  const audio = new AudioService(testConfig());
  const dir = scratchDir('ps');
  const signal = () => new AbortController().signal;
  const prepared = async (file: string) => audio.normalize(file, path.join(dir, `${path.basename(file)}.16k.wav`));

  it('reports itself available with the Debian model', async () => {
    const health = await engine.health();
    expect(health).toMatchObject({ available: true, details: { model: 'en-us' } });
    // Paths on the worker are private.
    expect(String(health.internal?.acoustic_model)).toContain('/usr/share/pocketsphinx/model/en-us');
    expect(JSON.stringify(health.details)).not.toContain('/');
  });

  it('recognises digits and a command exactly enough (WER bound) and reports progress', async () => {
    const refs = references();
    const fractions: number[] = [];
    const go = await engine.transcribe(await prepared(fixture('goforward.wav')), {}, { signal: signal(), onProgress: (p) => fractions.push(p.fraction) });
    const digits = await engine.transcribe(await prepared(fixture('tidigits_2934z.wav')), {}, { signal: signal() });
    expect(wordErrorRate([{ reference: refs.get('goforward')!, hypothesis: go.text }])).toBeLessThanOrEqual(0.25);
    expect(go.engine).toEqual({ id: 'pocketsphinx', model: 'en-us' });
    expect(fractions.length).toBeGreaterThan(0);
    expect(Math.max(...fractions)).toBeLessThanOrEqual(1);
    // Debian's generic en-us language model spells digits as words.
    expect(digits.segments.length).toBeGreaterThan(0);
  });

  it('turns ignored options into warnings, not errors', async () => {
    const result = await engine.transcribe(await prepared(fixture('goforward.wav')), { language: 'de', diarization: { enabled: true }, prompt: 'x' }, { signal: signal() });
    expect(result.warnings.join(' ')).toMatch(/language 'de' was ignored/);
    expect(result.warnings.join(' ')).toMatch(/diarization/);
    expect(result.warnings.join(' ')).toMatch(/prompt/);
  });

  it('raises ENGINE_EMPTY_OUTPUT, never an empty transcript, when non-silent audio is not 16 kHz mono', async () => {
    const wrong = path.join(dir, 'jfk48k.wav');
    execFileSync('ffmpeg', ['-v', 'error', '-i', fixture('jfk.wav'), '-ar', '48000', '-ac', '2', wrong]);
    const error = await engine.transcribe({ path: wrong, duration_sec: 11, max_volume_db: -2 }, {}, { signal: signal() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    // pocketsphinx either prints nothing (exit 0) or exits non-zero on such input, depending on the header.
    expect(['ENGINE_EMPTY_OUTPUT', 'ENGINE_INTERNAL']).toContain((error as EngineError).code);
  });

  it('returns an empty transcript with a warning for digital silence', async () => {
    const silence = path.join(dir, 'silence.wav');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', '2', silence]);
    const result = await engine.transcribe(await prepared(silence), {}, { signal: signal() });
    expect(result.segments).toEqual([]);
    expect(result.warnings).toContain('the audio is silent: no speech found');
  });

  // Seeded noise: pocketsphinx hears a filler word (`ah`) in some noise, so an unseeded source would make the case random.
  it.each([
    ['1 s of white noise', 'anoisesrc=d=1:r=16000:a=0.3:seed=2'],
    ['1 s of a 440 Hz tone', 'sine=f=440:d=1:r=16000'],
    ['0.2 s of loud noise', 'anoisesrc=d=0.2:r=16000:a=0.5:seed=42'],
  ])('returns an empty transcript with a warning, not ENGINE_EMPTY_OUTPUT, for %s (valid 16 kHz mono without words)', async (_name, source) => {
    const file = path.join(dir, `${source.replace(/[^a-z0-9]/gi, '_')}.wav`);
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', source, file]);
    const prepared16k = await prepared(file);
    expect(prepared16k.max_volume_db).toBeGreaterThan(-50);
    const result = await engine.transcribe(prepared16k, {}, { signal: signal() });
    expect(result.segments).toEqual([]);
    expect(result.text).toBe('');
    expect(result.warnings.join(' ')).toMatch(/no speech recognized/);
  });

  it('stops promptly and raises ENGINE_CANCELLED when aborted', async () => {
    const long = path.join(dir, 'long.wav');
    execFileSync('ffmpeg', ['-v', 'error', '-stream_loop', '8', '-i', fixture('jfk.wav'), '-fflags', '+bitexact', long]);
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 300);
    const error = await engine.transcribe({ path: long, duration_sec: 99, max_volume_db: -2 }, {}, { signal: controller.signal }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENGINE_CANCELLED', retryable: false });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('maps a missing binary to ENGINE_UNAVAILABLE (retryable: another worker may have it) and an unavailable health, without its path', async () => {
    const config = Object.assign(new PocketsphinxConfig(), { POCKETSPHINX_PATH: '/nonexistent/pocketsphinx_continuous' });
    const broken = new PocketsphinxEngine(config);
    const health = await broken.health();
    expect(health).toMatchObject({ available: false, internal: { path: '/nonexistent/pocketsphinx_continuous' } });
    expect(health.message).not.toContain('/nonexistent');
    const error = await broken.transcribe(await prepared(fixture('goforward.wav')), {}, { signal: signal() }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true, details: { command: '/nonexistent/pocketsphinx_continuous' } });
    expect(JSON.stringify(error)).not.toContain('/nonexistent');
  });
});
