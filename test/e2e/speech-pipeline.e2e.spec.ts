import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { VoiceActivityDetector } from '../../src/audio/vad.js';
import { wavHeader } from '../../src/audio/wav.js';
import { SPEECH_GAP_SEC } from '../../src/transcription/long-audio/long-audio.pipeline.js';
import { normalizeSpeechRegions } from '../../src/transcription/long-audio/speech-chunks.js';
import { EchoEngine, readPcm } from '../support/echo-engine.js';
import { fixture, scratchDir, testConfig } from '../support/env.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { followStream, getJson, submit } from '../support/http.js';
import { references, wordErrorRate } from '../support/wer.js';

interface StatusEvent { status: string; chunks_total?: number }
interface Word { word: string; start: number; end: number }
interface ResultView {
  duration: number;
  text: string;
  warnings: string[];
  speech_seconds: number | null;
  engine_seconds: number | null;
  segments: { start: number; end: number; words: Word[] }[];
}

const RATE = 16_000;
/** Pink noise at about -45 dBFS RMS (anoisesrc amplitude 0.028, measured with astats): a quiet room. */
const ROOM_NOISE_AMPLITUDE = 0.028;
const CLIP_IDS = ['libri_0870', 'libri_0880', 'libri_0890', 'jfk', 'libri_0920', 'libri_0930'];

/** A recording built in the test: 16 kHz mono s16le WAV, and where each clip lies in it (exact sample times, seconds). */
interface Recording {
  path: string;
  duration: number;
  clips: { id: string; start: number; end: number }[];
}

/** `seconds` of pink room noise (16 kHz s16le samples), or digital silence when `noise` is false. */
function filler(seconds: number, noise: boolean, seed: number): Int16Array {
  const n = Math.round(seconds * RATE);
  if (!noise) return new Int16Array(n);
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `anoisesrc=c=pink:r=${RATE}:a=${ROOM_NOISE_AMPLITUDE}:seed=${seed}`, '-t', String(seconds), '-f', 's16le', '-ac', '1', '-'], { maxBuffer: 1 << 30 });
  const samples = new Int16Array(n);
  samples.set(new Int16Array(raw.buffer, raw.byteOffset, Math.min(n, Math.floor(raw.length / 2))));
  return samples;
}

/**
 * Joins the fixture clips (16 kHz mono WAVs) with the given fillers: fillers[0], clip 0,
 * fillers[1], clip 1, …, fillers[n]. Built sample by sample so every clip's position is exact.
 * `nonZeroClips` replaces exact zeros inside clips by 1 (inaudible) so that a clip is one stretch
 * of non-zero samples for the echo engine.
 */
async function buildRecording(file: string, ids: string[], fillers: Int16Array[], options: { nonZeroClips?: boolean } = {}): Promise<Recording> {
  const parts: Int16Array[] = [];
  const clips: Recording['clips'] = [];
  let at = 0;
  for (let i = 0; i <= ids.length; i++) {
    parts.push(fillers[i]);
    at += fillers[i].length;
    if (i === ids.length) break;
    const { samples, sampleRate } = await readPcm(fixture(`${ids[i]}.wav`));
    if (sampleRate !== RATE) throw new Error(`${ids[i]}.wav is ${sampleRate} Hz, not ${RATE}`);
    const clip = options.nonZeroClips ? samples.map((s) => (s === 0 ? 1 : s)) : samples;
    parts.push(clip);
    clips.push({ id: ids[i], start: at / RATE, end: (at + clip.length) / RATE });
    at += clip.length;
  }
  const data = Buffer.alloc(at * 2);
  let offset = 0;
  for (const p of parts) {
    Buffer.from(p.buffer, p.byteOffset, p.byteLength).copy(data, offset);
    offset += p.byteLength;
  }
  writeFileSync(file, Buffer.concat([wavHeader(data.length, { sampleRate: RATE, channels: 1 }), data]));
  return { path: file, duration: at / RATE, clips };
}

const allWords = (r: ResultView) => r.segments.flatMap((s) => s.words);

function expectOrderedWordsInside(result: ResultView, duration: number) {
  const words = allWords(result);
  for (let i = 0; i < words.length; i++) {
    expect(words[i].start).toBeGreaterThanOrEqual(0);
    expect(words[i].end).toBeGreaterThanOrEqual(words[i].start);
    expect(words[i].end).toBeLessThanOrEqual(duration + 1e-6);
    if (i > 0) expect(words[i].start).toBeGreaterThanOrEqual(words[i - 1].start);
  }
}

async function runJob(gw: TestGateway, file: string, fields: Record<string, string> = {}) {
  const { status, body } = await submit(gw.url, file, fields);
  expect(status).toBe(202);
  const events = await followStream<StatusEvent>(`${gw.url}/api/transcribe/jobs/stream/${String(body.job_id)}`, 600_000);
  const last = events[events.length - 1];
  expect(last.status).toBe('completed');
  const result = await getJson<ResultView>(`${gw.url}/api/transcribe/jobs/result/${String(body.job_id)}`);
  expect(result.status).toBe(200);
  return { result: result.body, chunks: Math.max(1, ...events.map((e) => e.chunks_total ?? 0)) };
}

describe('speech-aware long-audio pipeline (Silero VAD, speech-only chunks)', () => {
  const gateways: TestGateway[] = [];
  const dir = scratchDir('speech');
  afterEach(async () => {
    await Promise.all(gateways.splice(0).map((g) => g.close()));
  });

  it('transcribes speech between long noisy silences as accurately as pocketsphinx on the clean clips, sending only the speech', async () => {
    // 20–40 s of room noise before, between and after the clips: ~220 s in all, ~36 s of speech.
    const pauses = [12, 25, 40, 20, 33, 28, 15];
    const recording = await buildRecording(path.join(dir, 'noisy-pauses.wav'), CLIP_IDS, pauses.map((s, i) => filler(s, true, i + 1)));
    const refs = references();

    // The baseline: pocketsphinx on each clean clip, in one piece, by hand.
    const unchunked = CLIP_IDS.map((id) => ({
      reference: refs.get(id)!,
      hypothesis: execFileSync('pocketsphinx_continuous', ['-infile', fixture(`${id}.wav`), '-logfn', '/dev/null']).toString(),
    }));

    const gw = await startGateway(testConfig({ CHUNKING_THRESHOLD: '60', CHUNK_DURATION: '30' }));
    gateways.push(gw);
    const { result, chunks } = await runJob(gw, recording.path, { vad_filter: 'true' });

    const werUnchunked = wordErrorRate(unchunked);
    const werVad = wordErrorRate([{ reference: CLIP_IDS.map((id) => refs.get(id)!).join(' '), hypothesis: result.text }]);
    expect(werVad).toBeLessThanOrEqual(werUnchunked + 0.01);
    expect(chunks).toBeGreaterThanOrEqual(2);

    const clipSeconds = recording.clips.reduce((sum, c) => sum + c.end - c.start, 0);
    expect(result.duration).toBeCloseTo(recording.duration, 1);
    expect(result.speech_seconds).not.toBeNull();
    expect(result.engine_seconds).not.toBeNull();
    // The VAD found the clips (padding and the clips' own leading/trailing quiet aside), not the noise.
    expect(result.speech_seconds!).toBeGreaterThan(clipSeconds * 0.7);
    expect(result.speech_seconds!).toBeLessThan(clipSeconds + 0.05 * recording.duration);
    expect(result.engine_seconds!).toBeGreaterThanOrEqual(result.speech_seconds! - 0.01);
    expect(result.engine_seconds!).toBeLessThanOrEqual(result.speech_seconds! + 0.05 * recording.duration);
    expect(result.engine_seconds!).toBeLessThan(0.35 * recording.duration);
    expectOrderedWordsInside(result, recording.duration);
    // Every word lies on a clip, none in the 12–40 s of noise: within 1 s of one (the VAD's 300 ms
    // padding plus its end-of-speech hangover in noise, which the engine hears and may time a last word into).
    const offClip = allWords(result).filter((w) => !recording.clips.some((c) => w.start >= c.start - 1 && w.end <= c.end + 1));
    expect({ offClip, clips: recording.clips }).toEqual({ offClip: [], clips: recording.clips });
  }, 600_000);

  it('maps every engine time back to the recording exactly: each stretch of audio lands where it was, once, across several chunks', async () => {
    const pauses = [7, 9, 12, 8, 10, 11, 6];
    const recording = await buildRecording(path.join(dir, 'exact.wav'), CLIP_IDS, pauses.map((s) => filler(s, false, 0)), { nonZeroClips: true });
    const config = testConfig({ CHUNKING_THRESHOLD: '30', CHUNK_DURATION: '15' });

    // What the gateway will send: its VAD's regions (same model, settings and samples), merged
    // where the pause is shorter than the gap that would replace it. Each region's non-zero part
    // (its intersection with a clip) is one stretch the echo engine hears, so one word.
    const vad = new VoiceActivityDetector(config);
    const regions = normalizeSpeechRegions(await vad.detectFile(recording.path), recording.duration, SPEECH_GAP_SEC);
    const expected: { start: number; end: number; clip: string }[] = [];
    for (const r of regions) {
      for (const c of recording.clips) {
        const start = Math.max(r.start, c.start);
        const end = Math.min(r.end, c.end);
        if (end > start) expected.push({ start, end, clip: c.id });
      }
    }
    expect(new Set(expected.map((e) => e.clip)).size).toBe(CLIP_IDS.length);

    const echo = new EchoEngine();
    const gw = await startGateway(config, [echo]);
    gateways.push(gw);
    const { result, chunks } = await runJob(gw, recording.path);
    expect(chunks).toBeGreaterThanOrEqual(3);
    expect(echo.calls).toBe(chunks);

    const words = allWords(result);
    expectOrderedWordsInside(result, recording.duration);
    // A stretch that straddles a mid-speech cut is heard by both chunks, each with 1 s of the other
    // side (speech-chunks.ts overlapSec): the echo engine's "word" there is as long as the stretch,
    // so both halves are kept; they overlapped by 2 s, and the merge ends the first where the second
    // starts (one voice: words never overlap). Stretches are otherwise apart (the VAD's non-speech
    // lies between them), so two words that touch are the halves of one stretch. Joined again, the
    // words must be the expected stretches: none lost, none doubled, each where its audio was
    // (1 ms plan grid, 20 ms slack).
    const joined: { start: number; end: number }[] = [];
    let cutsSeen = 0;
    for (const w of words) {
      const last = joined[joined.length - 1];
      expect(w.start).toBeGreaterThanOrEqual(last ? last.end : 0);
      if (last && w.start === last.end) {
        cutsSeen++;
        last.end = Math.max(last.end, w.end);
      } else {
        joined.push({ start: w.start, end: w.end });
      }
    }
    expect(cutsSeen).toBeLessThan(chunks);
    expect(joined).toHaveLength(expected.length);
    joined.forEach((w, i) => {
      expect(Math.abs(w.start - expected[i].start)).toBeLessThan(0.02);
      expect(Math.abs(w.end - expected[i].end)).toBeLessThan(0.02);
    });
    // Independently of the VAD: each clip got a word, and every word lies on a clip.
    for (const c of recording.clips) expect(words.some((w) => w.start >= c.start - 0.02 && w.end <= c.end + 0.02)).toBe(true);
    for (const w of words) expect(recording.clips.some((c) => w.start >= c.start - 0.02 && w.end <= c.end + 0.02)).toBe(true);
    // The engine heard the speech plus short gaps, far less than the recording.
    const heard = echo.received.reduce((a, b) => a + b, 0);
    expect(result.engine_seconds).toBeCloseTo(heard, 2);
    expect(heard).toBeLessThan(result.speech_seconds! + 0.05 * recording.duration);
  }, 300_000);

  it('completes a recording of only silence and room noise with an empty transcript, without calling the engine', async () => {
    const samples = new Int16Array(90 * RATE);
    samples.set(filler(30, true, 11), 10 * RATE);
    samples.set(filler(25, true, 12), 55 * RATE);
    const file = path.join(dir, 'no-speech.wav');
    writeFileSync(file, Buffer.concat([wavHeader(samples.byteLength, { sampleRate: RATE, channels: 1 }), Buffer.from(samples.buffer)]));

    const echo = new EchoEngine();
    const gw = await startGateway(testConfig({ CHUNKING_THRESHOLD: '30', CHUNK_DURATION: '15' }), [echo]);
    gateways.push(gw);
    const { result } = await runJob(gw, file);
    expect(result.text).toBe('');
    expect(result.segments).toEqual([]);
    expect(result.warnings.join(' ')).toMatch(/no speech/i);
    expect(result.speech_seconds).toBe(0);
    expect(result.engine_seconds).toBe(0);
    expect(echo.calls).toBe(0);
  }, 120_000);

  it('with vad_filter=false sends the whole recording (pause-based chunks) and still completes', async () => {
    const pauses = [5, 8, 10, 6, 9, 7, 4];
    const recording = await buildRecording(path.join(dir, 'no-vad.wav'), CLIP_IDS, pauses.map((s, i) => filler(s, true, 20 + i)));
    const echo = new EchoEngine();
    const gw = await startGateway(testConfig({ CHUNKING_THRESHOLD: '30', CHUNK_DURATION: '15' }), [echo]);
    gateways.push(gw);
    const { result, chunks } = await runJob(gw, recording.path, { vad_filter: 'false' });
    expect(chunks).toBeGreaterThanOrEqual(3);
    expect(echo.calls).toBe(chunks);
    expect(result.engine_seconds).toBeCloseTo(recording.duration, 1);
    // Pause-based chunks cover the whole recording (blind cuts could add a little overlap).
    const heard = echo.received.reduce((a, b) => a + b, 0);
    expect(heard).toBeGreaterThanOrEqual(recording.duration - 0.05);
    expect(result.speech_seconds!).toBeLessThan(recording.duration);
    expectOrderedWordsInside(result, recording.duration);
  }, 300_000);
});
