import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseSilencedetect } from '../../src/audio/silences.js';
import { VadError, VoiceActivityDetector, type SpeechRegion } from '../../src/audio/vad.js';
import { ConfigValidationError, loadConfig } from '../../src/config/app-config.js';
import { fixture, scratchDir, testConfig } from '../support/env.js';

/**
 * Silero VAD through onnxruntime-node on real speech: recordings are built here with ffmpeg from
 * the fixtures (never committed). Known speech comes from the clips' placement, from ffmpeg
 * silencedetect on each clean clip (its first and last sound) and from the TTS dialogue's RTTM.
 */

// Typed arrays of Node's main context for onnxruntime: test/support/typed-array-realm.ts (Jest setup).

const ffmpeg = (...args: string[]) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...args]);
const duration = (file: string) => Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]).toString());

/**
 * Where a clean studio clip makes sound, by level (ffmpeg silencedetect below -30 dBFS for ≥ 0.1 s):
 * seconds to its first sound, to the end of its last one, and the pauses in between.
 */
function soundSpan(file: string): { onset: number; offset: number; pauses: { start: number; end: number }[] } {
  const length = duration(file);
  const { stderr } = spawnSync('ffmpeg', ['-nostdin', '-hide_banner', '-nostats', '-i', file, '-af', 'silencedetect=noise=-30dB:d=0.1', '-f', 'null', '-'], { encoding: 'utf8' });
  // silencedetect can report one pause as pieces a few samples apart: join them.
  const silences = parseSilencedetect(stderr, length).reduce<{ start: number; end: number }[]>((all, s) => {
    const last = all[all.length - 1];
    if (last && s.start - last.end < 0.01) last.end = s.end;
    else all.push({ ...s });
    return all;
  }, []);
  const leading = silences.find((s) => s.start <= 0.01);
  const trailing = silences.find((s) => s.end >= length - 0.01);
  return { onset: leading?.end ?? 0, offset: trailing?.start ?? length, pauses: silences.filter((s) => s !== leading && s !== trailing) };
}

/** s16le samples of a WAV decoded by ffmpeg (independent of the detector's own WAV reader). */
function samplesOf(file: string): Int16Array {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '1', '-ar', '16000', '-'], { maxBuffer: 256 * 2 ** 20 });
  return new Int16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
}

const total = (regions: SpeechRegion[]) => regions.reduce((s, r) => s + (r.end - r.start), 0);
const overlapping = (regions: SpeechRegion[], from: number, to: number) => regions.filter((r) => r.end > from && r.start < to);

function expectWellFormed(regions: SpeechRegion[], audioSeconds: number): void {
  regions.forEach((r, i) => {
    expect(r.start).toBeGreaterThanOrEqual(0);
    expect(r.end).toBeGreaterThan(r.start);
    expect(r.end).toBeLessThanOrEqual(audioSeconds + 0.001);
    if (i > 0) expect(r.start).toBeGreaterThan(regions[i - 1].end);
  });
}

describe('VoiceActivityDetector (Silero VAD on onnxruntime-node)', () => {
  const dir = scratchDir('vad');
  const config = testConfig();
  const pad = config.VAD_SPEECH_PAD_MS / 1000;
  const TOLERANCE = 0.5;

  // 20 s digital silence + jfk.wav (11 s) + 30 s pink noise peaking at -41 dBFS + libri_0870.wav (7.1 s).
  const mixed = path.join(dir, 'mixed.wav');
  const silence = path.join(dir, 'silence.wav');
  const noise = path.join(dir, 'noise.wav');
  const tone = path.join(dir, 'tone.wav');
  let clips: ({ name: string; at: number; length: number } & ReturnType<typeof soundSpan>)[];
  let mixedSeconds: number;

  beforeAll(() => {
    ffmpeg('-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', '20', '-c:a', 'pcm_s16le', silence);
    ffmpeg('-f', 'lavfi', '-i', 'anoisesrc=color=pink:amplitude=0.01:sample_rate=16000:seed=7', '-t', '30', '-ac', '1', '-c:a', 'pcm_s16le', noise);
    ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=16000', '-t', '10', '-c:a', 'pcm_s16le', tone);
    // Without -fflags +bitexact ffmpeg writes a LIST chunk before `data`: the reader must skip it.
    ffmpeg('-i', silence, '-i', fixture('jfk.wav'), '-i', noise, '-i', fixture('libri_0870.wav'), '-filter_complex', '[0][1][2][3]concat=n=4:v=0:a=1', '-ac', '1', '-ar', '16000', '-c:a', 'pcm_s16le', mixed);
    const jfk = { name: 'jfk', at: 20, length: duration(fixture('jfk.wav')), ...soundSpan(fixture('jfk.wav')) };
    const libriAt = jfk.at + jfk.length + 30;
    clips = [jfk, { name: 'libri_0870', at: libriAt, length: duration(fixture('libri_0870.wav')), ...soundSpan(fixture('libri_0870.wav')) }];
    mixedSeconds = duration(mixed);
  });

  // First in the file: the model is not loaded yet in this module registry, so these calls race for the load.
  it('loads the model once for all detectors, and concurrent calls keep their own state', async () => {
    expect(VoiceActivityDetector.loadCount()).toBe(0);
    const a = new VoiceActivityDetector(config);
    const b = new VoiceActivityDetector(config);
    const pcm = samplesOf(mixed);
    const [fromA, fromB, fromFile, onNoise] = await Promise.all([a.detect(pcm), b.detect(pcm), a.detectFile(mixed), b.detectFile(noise)]);
    expect(VoiceActivityDetector.loadCount()).toBe(1);
    expect(fromB).toEqual(fromA);
    expect(fromFile).toEqual(fromA);
    expect(onNoise).toEqual([]);
    // Alone, one call finds the same regions as while interleaved with three others.
    expect(await b.detectFile(mixed)).toEqual(fromA);
    expect((await a.load()).weights).toBe('silero_vad_16k_op15.onnx');
    expect(VoiceActivityDetector.loadCount()).toBe(1);
  });

  it('finds the speech of a recording with silence and noise, and nothing else', async () => {
    expect(readFileSync(mixed).subarray(36, 40).toString('ascii')).toBe('LIST');
    const regions = await new VoiceActivityDetector(config).detectFile(mixed);
    expectWellFormed(regions, mixedSeconds);
    // Every region belongs to a clip: none in the 20 s of silence or the 30 s of noise.
    for (const r of regions) {
      expect(clips.some((c) => r.start >= c.at + c.onset - pad - TOLERANCE && r.end <= c.at + c.offset + pad + TOLERANCE)).toBe(true);
    }
    let known = 0;
    for (const c of clips) {
      const inClip = overlapping(regions, c.at, c.at + c.length);
      expect(inClip.length).toBeGreaterThan(0);
      // The first and last sound of the clip are inside regions, within the padding.
      expect(inClip[0].start).toBeLessThanOrEqual(c.at + c.onset + TOLERANCE);
      expect(inClip[0].start).toBeGreaterThanOrEqual(c.at + c.onset - pad - TOLERANCE);
      expect(inClip[inClip.length - 1].end).toBeGreaterThanOrEqual(c.at + c.offset - TOLERANCE);
      known += c.offset - c.onset;
    }
    // Speech time: the clips' sound spans minus the pauses inside them (≥ 0.5 s, not speech), plus padding.
    expect(total(regions)).toBeGreaterThan(0.75 * known);
    expect(total(regions)).toBeLessThan(known + 2 * pad * regions.length + 0.5);
    // The model's own regions (unpadded) leave out the clips' pauses of VAD_MIN_SILENCE_MS and more.
    const unpadded = await new VoiceActivityDetector(config).detectFile(mixed, { speechPadMs: 0 });
    const pauses = clips.flatMap((c) => c.pauses.filter((p) => p.end - p.start >= config.VAD_MIN_SILENCE_MS / 1000 + 0.2).map((p) => (c.at + (p.start + p.end) / 2)));
    expect(pauses.length).toBeGreaterThanOrEqual(2); // JFK's two long pauses
    for (const middle of pauses) expect(unpadded.some((r) => r.start <= middle && r.end >= middle)).toBe(false);
  });

  it('covers every utterance of the TTS dialogue (RTTM spans) within the padding', async () => {
    const file = fixture('tts/dialogue_2spk.wav');
    const spans = readFileSync(fixture('tts/dialogue_2spk.rttm'), 'utf8').trim().split('\n')
      .map((line) => line.split(/\s+/)).map((f) => ({ start: Number(f[3]), end: Number(f[3]) + Number(f[4]) }));
    const regions = await new VoiceActivityDetector(config).detectFile(file);
    expectWellFormed(regions, duration(file));
    for (const span of spans) {
      const hits = overlapping(regions, span.start, span.end);
      expect(hits.length).toBeGreaterThan(0);
      expect(hits[0].start).toBeLessThanOrEqual(span.start + TOLERANCE);
      expect(hits[0].start).toBeGreaterThanOrEqual(span.start - pad - TOLERANCE);
      expect(hits[hits.length - 1].end).toBeGreaterThanOrEqual(span.end - TOLERANCE);
      expect(hits[hits.length - 1].end).toBeLessThanOrEqual(span.end + pad + TOLERANCE);
    }
    const known = spans.reduce((s, x) => s + x.end - x.start, 0);
    expect(total(regions)).toBeGreaterThan(0.85 * known);
    expect(total(regions)).toBeLessThan(known + 2 * pad * spans.length);
  });

  it('finds no speech in digital silence, pink noise or a 1 kHz tone', async () => {
    const vad = new VoiceActivityDetector(config);
    expect(await vad.detectFile(silence)).toEqual([]);
    expect(await vad.detectFile(noise)).toEqual([]);
    expect(await vad.detectFile(tone)).toEqual([]);
    expect(await vad.detect(new Int16Array(0))).toEqual([]);
  });

  it('takes per-call overrides of the configured settings', async () => {
    const vad = new VoiceActivityDetector(config);
    const jfk = samplesOf(fixture('jfk.wav'));
    const byDefault = await vad.detect(jfk);
    expect(byDefault.length).toBeGreaterThan(1); // JFK pauses for more than 0.5 s
    // A longer minimum silence bridges those pauses.
    expect(await vad.detect(jfk, { minSilenceMs: 2000 })).toHaveLength(1);
    // Without padding the regions are the model's own: inside the padded ones and shorter in sum.
    const unpadded = await vad.detect(jfk, { speechPadMs: 0, minSilenceMs: config.VAD_MIN_SILENCE_MS });
    expect(total(unpadded)).toBeLessThan(total(byDefault));
    for (const r of unpadded) expect(byDefault.some((p) => p.start <= r.start && p.end >= r.end)).toBe(true);
    // A minimum speech length longer than any phrase leaves nothing.
    expect(await vad.detect(jfk, { minSpeechMs: 60_000 })).toEqual([]);
    // Settings come from the config when not overridden.
    const strict = new VoiceActivityDetector(testConfig({ VAD_MIN_SILENCE_MS: '2000', VAD_SPEECH_PAD_MS: '0' }));
    const bridged = await strict.detect(jfk);
    expect(bridged).toHaveLength(1);
    expect(bridged[0].start).toBeGreaterThan(byDefault[0].start);
  });

  it('has documented, validated settings', () => {
    expect(loadConfig({})).toMatchObject({ VAD_THRESHOLD: 0.5, VAD_MIN_SPEECH_MS: 250, VAD_MIN_SILENCE_MS: 500, VAD_SPEECH_PAD_MS: 300 });
    expect(loadConfig({ VAD_THRESHOLD: '0.6', VAD_SPEECH_PAD_MS: '200' })).toMatchObject({ VAD_THRESHOLD: 0.6, VAD_SPEECH_PAD_MS: 200 });
    let error: unknown;
    try {
      loadConfig({ VAD_THRESHOLD: '1.5', VAD_MIN_SILENCE_MS: 'long', VAD_SPEECH_PAD_MS: '-1' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    for (const name of ['VAD_THRESHOLD', 'VAD_MIN_SILENCE_MS', 'VAD_SPEECH_PAD_MS']) expect((error as Error).message).toContain(name);
  });

  it('names what is wrong with coded errors', async () => {
    const vad = new VoiceActivityDetector(config);
    const stereo = path.join(dir, 'stereo44k.wav');
    ffmpeg('-i', fixture('fw_stereo_diarization.wav'), '-ar', '44100', '-c:a', 'pcm_s16le', stereo);
    const unsupported = await vad.detectFile(stereo).catch((e: unknown) => e);
    expect(unsupported).toBeInstanceOf(VadError);
    expect(unsupported).toMatchObject({ code: 'VAD_UNSUPPORTED_AUDIO', status: 500 });
    expect((unsupported as VadError).message).toContain('44100 Hz, 2 channel(s)');
    expect((unsupported as VadError).message).not.toContain(dir);

    const missing = await vad.detectFile(path.join(dir, 'missing.wav')).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'VAD_AUDIO_UNREADABLE' });
    expect(JSON.stringify((missing as VadError).toPublic())).not.toContain(dir);
    expect((missing as VadError).details.path).toBe(path.join(dir, 'missing.wav'));

    const text = path.join(dir, 'text.wav');
    execFileSync('sh', ['-c', `echo not a wav > ${text}`]);
    await expect(vad.detectFile(text)).rejects.toMatchObject({ code: 'VAD_UNSUPPORTED_AUDIO' });

    await expect(vad.detect(new Int16Array(16000), { threshold: 1.5 })).rejects.toMatchObject({ code: 'VAD_INVALID_OPTIONS', status: 400 });
    await expect(vad.detect(new Int16Array(16000), { minSilenceMs: -1 })).rejects.toMatchObject({ code: 'VAD_INVALID_OPTIONS' });
  });

  it('stops when aborted', async () => {
    const vad = new VoiceActivityDetector(config);
    const controller = new AbortController();
    const running = vad.detectFile(mixed, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('job cancelled')), 50);
    await expect(running).rejects.toThrow('job cancelled');
  });
});
