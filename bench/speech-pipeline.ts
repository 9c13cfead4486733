/**
 * Speech pipeline: what the speech-aware long-audio pipeline saves and what it costs, on one
 * recording of speech separated by long silences with room noise — the fixture clips (libri_*,
 * jfk) with 20–40 s of pink noise at about -45 dBFS RMS between them, encoded as a typical upload
 * (MP3, 44.1 kHz stereo, 128 kbit/s).
 *
 * 1. Engine seconds per recording second, vad_filter on vs off, next to the speech fraction (VAD
 *    speech seconds / recording seconds): on, the sum of the speech-only chunks' audio
 *    (planSpeechChunks + writeSpeechChunkWav, exactly what the gateway stores for the engine);
 *    off, the sum of the pause-based pieces (detectSilences + planChunks, as LongAudioPipeline.split
 *    cuts them). Goal: on ≤ speech fraction + 5 %.
 * 2. Preparation, in-process, the gateway's own steps: AudioService.normalize of the upload to
 *    16 kHz mono, then cutting every speech-only chunk from the decoded PCM (writeSpeechChunkWav)
 *    and storing it (LocalStorageDriver.put), as LongAudioPipeline.splitSpeech does — against one
 *    plain `ffmpeg -i in -ar 16000 -ac 1 -f s16le out.pcm` of the same upload in the same
 *    repetition (which goes first alternates). Goal: ≤ 1.1×. The Silero VAD and the plan, which run
 *    between decode and cut, are timed apart and reported with the total and the VAD's share.
 *    BENCH_SPEECH_REPEAT times (default 2); medians.
 * 3. VAD real-time factor: detectFile wall time / recording seconds (from step 2's runs).
 *
 * No Postgres or Redis: `npx tsc -p tsconfig.build.json && node dist/bench/speech-pipeline.js`,
 * or `./scripts/bench.sh speech-pipeline`. Environment: BENCH_SPEECH_SECONDS (recording length,
 * default 600), BENCH_SPEECH_REPEAT, BENCH_SPEECH_CAPACITY (engine calls at once the plan is sized
 * for, default 2: one worker at the default WORKER_CONCURRENCY), the gateway's CHUNK_* / VAD_*
 * settings, BENCH_MAX_LOAD / BENCH_LOAD_WAIT_S.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AudioService } from '../src/audio/audio.service.js';
import { VoiceActivityDetector } from '../src/audio/vad.js';
import { readWavHeader, wavHeader } from '../src/audio/wav.js';
import { loadConfig } from '../src/config/app-config.js';
import { LocalStorageDriver } from '../src/storage/local-storage.driver.js';
import { planChunks } from '../src/transcription/long-audio/chunk-plan.js';
import { SPEECH_GAP_SEC } from '../src/transcription/long-audio/long-audio.pipeline.js';
import { writeSpeechChunkWav } from '../src/transcription/long-audio/speech-audio.js';
import { planSpeechChunks } from '../src/transcription/long-audio/speech-chunks.js';
import { envNumber, fixture, scratchDir } from './lib/env.js';
import { settleAndDescribe, waitForQuiet } from './lib/machine.js';
import { encodeMp3, probeDuration } from './lib/recording.js';
import { median, round, writeResult } from './lib/results.js';

const RATE = 16_000;
const CLIPS = ['libri_0870', 'libri_0880', 'libri_0890', 'jfk', 'libri_0920', 'libri_0930'];
/** anoisesrc amplitude giving pink noise at about -45 dBFS RMS (measured with astats). */
const NOISE_AMPLITUDE = 0.028;

/** Samples of a 16 kHz mono s16le WAV. */
function readSamples(file: string): Int16Array {
  const bytes = readFileSync(file);
  // Canonical fixture headers: the data chunk follows the 44-byte header; checked by the length below.
  const data = bytes.subarray(44);
  const out = new Int16Array(Math.floor(data.length / 2));
  new Uint8Array(out.buffer).set(data.subarray(0, out.length * 2));
  return out;
}

/**
 * Clips with 20–40 s of pink room noise before each (and after the last) until `seconds` are
 * filled; the recording is cut to exactly `seconds`. @returns the WAV path and the clip seconds in it.
 */
function buildNoisyRecording(dir: string, seconds: number): { path: string; clipSeconds: number } {
  const total = Math.round(seconds * RATE);
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `anoisesrc=c=pink:r=${RATE}:a=${NOISE_AMPLITUDE}:seed=3`, '-t', String(seconds), '-f', 's16le', '-ac', '1', '-'], { maxBuffer: 2 ** 31 - 1 });
  const samples = new Int16Array(total);
  samples.set(new Int16Array(raw.buffer, raw.byteOffset, Math.min(total, Math.floor(raw.length / 2))));
  const clips = CLIPS.map((id) => readSamples(fixture(`${id}.wav`)));
  let at = 0;
  let clipSamples = 0;
  // Deterministic pause lengths in 20–40 s.
  for (let i = 0; ; i++) {
    at += Math.round((20 + ((i * 7919) % 21)) * RATE);
    const clip = clips[i % clips.length];
    if (at + clip.length > total) break;
    samples.set(clip, at);
    at += clip.length;
    clipSamples += clip.length;
  }
  const file = path.join(dir, 'noisy.wav');
  writeFileSync(file, Buffer.concat([wavHeader(samples.byteLength, { sampleRate: RATE, channels: 1 }), Buffer.from(samples.buffer)]));
  return { path: file, clipSeconds: clipSamples / RATE };
}

async function main(): Promise<void> {
  const seconds = envNumber('BENCH_SPEECH_SECONDS', 600);
  const repeat = Math.max(1, envNumber('BENCH_SPEECH_REPEAT', 2));
  const capacity = Math.max(1, envNumber('BENCH_SPEECH_CAPACITY', 2));
  const scratch = scratchDir('speech-pipeline');
  console.log(`speech-pipeline: building a ${seconds} s recording (speech between 20–40 s of room noise) in ${scratch}`);
  const recording = buildNoisyRecording(scratch, seconds);
  const upload = encodeMp3(recording.path, path.join(scratch, 'noisy.mp3'));
  rmSync(recording.path);

  const machine = await settleAndDescribe();
  const startedAt = new Date().toISOString();
  const config = loadConfig({ ...process.env });
  const audio = new AudioService(config);
  const vad = new VoiceActivityDetector(config);
  const model = await vad.load();
  const maxChunkSec = config.CHUNK_DURATION;
  const gapSec = Math.min(SPEECH_GAP_SEC, maxChunkSec / 10);

  // --- 2 + 3. preparation, gateway steps vs one plain ffmpeg decode, alternated --------------
  // The gateway's preparation is decode + cut + store (what LongAudioPipeline.splitSpeech does with
  // the decoded PCM); the VAD runs between decode and plan and is timed on its own: its CPU cost
  // (a model over every 32 ms frame) is not decoding work a plain ffmpeg would do.
  const runs: { decode_s: number; vad_s: number; plan_s: number; cut_store_s: number; prep_s: number; total_s: number; ffmpeg_s: number; stored_bytes: number; load: number; first: 'gateway' | 'ffmpeg' }[] = [];
  let last: { duration: number; speechSec: number; engineSec: number; chunks: number; regions: number } | null = null;
  const plainDecode = (dir: string) => {
    const f0 = performance.now();
    execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', upload, '-ar', '16000', '-ac', '1', '-f', 's16le', path.join(dir, 'plain.pcm')]);
    return (performance.now() - f0) / 1000;
  };
  for (let r = 0; r < repeat; r++) {
    const dir = path.join(scratch, `prep-${r}`);
    const storage = new LocalStorageDriver(path.join(dir, 'storage'));
    mkdirSync(path.join(dir, 'work'), { recursive: true });
    const quiet = await waitForQuiet();
    // Alternate which goes first, so neither always runs on a warmer page cache.
    const first = r % 2 === 0 ? 'gateway' : 'ffmpeg';
    let ffmpegS = first === 'ffmpeg' ? plainDecode(dir) : 0;
    const t0 = performance.now();
    const normalized = await audio.normalize(upload, path.join(dir, 'work', 'audio.wav'));
    const t1 = performance.now();
    const regions = await vad.detectFile(normalized.path);
    const t2 = performance.now();
    const chunks = planSpeechChunks(regions, normalized.duration_sec, { maxChunkSec, capacity, gapSec });
    const t3 = performance.now();
    const header = await readWavHeader(normalized.path);
    let engineSec = 0;
    let storedBytes = 0;
    for (const chunk of chunks) {
      const file = path.join(dir, 'work', `speech-${chunk.index}.wav`);
      engineSec += (await writeSpeechChunkWav({ path: normalized.path, header }, chunk, file)).durationSec;
      storedBytes += (await storage.put(`chunks/${chunk.index}.wav`, file, { contentType: 'audio/wav' })).size_bytes;
    }
    const t4 = performance.now();
    if (first === 'gateway') ffmpegS = plainDecode(dir);
    const s = (a: number, b: number) => (b - a) / 1000;
    runs.push({ decode_s: s(t0, t1), vad_s: s(t1, t2), plan_s: s(t2, t3), cut_store_s: s(t3, t4), prep_s: s(t0, t1) + s(t3, t4), total_s: s(t0, t4), ffmpeg_s: ffmpegS, stored_bytes: storedBytes, load: quiet.load_average[0], first });
    last = { duration: normalized.duration_sec, speechSec: regions.reduce((sum, x) => sum + x.end - x.start, 0), engineSec, chunks: chunks.length, regions: regions.length };
    console.log(`  prep run ${r + 1} (${first} first): decode ${round(s(t0, t1), 2)} + cut & store ${round(s(t3, t4), 2)} = ${round(s(t0, t1) + s(t3, t4), 2)} s vs plain ffmpeg decode ${round(ffmpegS, 2)} s; VAD ${round(s(t1, t2), 2)}, plan ${round(s(t2, t3), 3)}; load ${quiet.load_average[0]}`);
    if (r < repeat - 1) rmSync(dir, { recursive: true, force: true });
  }
  const m = (k: Exclude<keyof (typeof runs)[number], 'first'>) => median(runs.map((x) => x[k]));
  const { duration, speechSec, engineSec, chunks, regions } = last!;

  // --- 1. vad_filter off: the pause-based pieces the gateway would send -----------------------
  const decoded = path.join(scratch, `prep-${repeat - 1}`, 'work', 'audio.wav');
  const silences = await audio.detectSilences(decoded, duration, { noiseDb: config.CHUNK_SILENCE_DB, minSilenceSec: config.CHUNK_MIN_SILENCE });
  const pausePlan = duration > config.CHUNKING_THRESHOLD
    ? planChunks(duration, silences, { target: maxChunkSec, minPause: config.CHUNK_MIN_SILENCE, blindOverlap: config.CHUNK_BLIND_OVERLAP })
    : [{ start: 0, end: duration }];
  const offSec = pausePlan.reduce((sum, c) => sum + c.end - c.start, 0);
  const checked = probeDuration(decoded);
  rmSync(scratch, { recursive: true, force: true });

  const speechFraction = speechSec / duration;
  const onFraction = engineSec / duration;
  const offFraction = offSec / duration;
  const vadRtf = m('vad_s') / duration;
  console.log(`  engine seconds / recording seconds: vad_filter on ${round(onFraction, 3)} (${round(engineSec, 1)} s in ${chunks} chunks), off ${round(offFraction, 3)} (${round(offSec, 1)} s in ${pausePlan.length} pieces); speech fraction ${round(speechFraction, 3)} (goal: on ≤ ${round(speechFraction + 0.05, 3)})`);
  const prepRatio = m('prep_s') / m('ffmpeg_s');
  const totalRatio = m('total_s') / m('ffmpeg_s');
  console.log(`  preparation (${round(duration / 60, 1)} min): decode + cut + store ${round(m('prep_s'), 2)} s vs plain ffmpeg decode ${round(m('ffmpeg_s'), 2)} s (×${round(prepRatio, 2)}); with VAD and plan ${round(m('total_s'), 2)} s (×${round(totalRatio, 2)}, VAD ${round((100 * m('vad_s')) / m('total_s'), 0)} %)`);
  console.log(`  VAD real-time factor: ${round(vadRtf, 4)} (${round(m('vad_s'), 2)} s for ${round(duration, 1)} s; ${round(1 / vadRtf, 0)}× real time)`);

  writeResult({
    benchmark: 'speech-pipeline',
    started_at: startedAt,
    finished_at: new Date().toISOString(),
    machine,
    method:
      `A ${round(duration, 1)} s recording: the fixture clips (${CLIPS.join(', ')}) with 20–40 s of pink noise at about -45 dBFS RMS before each, ` +
      'encoded as MP3 44.1 kHz stereo 128 kbit/s. In-process, the gateway\'s own code: AudioService.normalize (16 kHz mono), ' +
      'VoiceActivityDetector.detectFile (Silero VAD), planSpeechChunks, then per chunk writeSpeechChunkWav + LocalStorageDriver.put ' +
      '(as LongAudioPipeline.splitSpeech); preparation = decode + cut + store, the VAD and plan timed apart; vs one plain ' +
      '`ffmpeg -i in.mp3 -ar 16000 -ac 1 -f s16le out.pcm` in the same repetition (which goes first alternates), medians. Engine seconds with vad_filter on: the summed audio of ' +
      'the speech-only chunks (what the gateway stores for the engine); off: the summed pause-based pieces (detectSilences + planChunks). ' +
      'VAD RTF = detectFile wall seconds / recording seconds.',
    config: { seconds, repeat, capacity, CHUNK_DURATION: maxChunkSec, CHUNKING_THRESHOLD: config.CHUNKING_THRESHOLD, gap_sec: gapSec, vad_model: model, VAD_THRESHOLD: config.VAD_THRESHOLD, VAD_SPEECH_PAD_MS: config.VAD_SPEECH_PAD_MS },
    measurements: {
      recording_s: duration, decoded_probe_s: checked, clip_s: recording.clipSeconds, speech_s: speechSec, vad_regions: regions,
      vad_on: { engine_s: engineSec, chunks }, vad_off: { engine_s: offSec, pieces: pausePlan.length, silences: silences.length },
      preparation_runs: runs,
    },
    headline: [
      { metric: 'speech fraction (VAD speech / recording)', value: round(speechFraction, 3), unit: '', note: `${round(speechSec, 1)} of ${round(duration, 1)} s` },
      { metric: 'engine s / recording s, vad_filter on', value: round(onFraction, 3), unit: '', note: `goal ≤ speech fraction + 0.05 = ${round(speechFraction + 0.05, 3)}; ${chunks} chunks` },
      { metric: 'engine s / recording s, vad_filter off', value: round(offFraction, 3), unit: '', note: `${pausePlan.length} pause-based pieces` },
      { metric: `preparation (decode + cut + store), ${round(duration / 60, 1)} min`, value: round(m('prep_s'), 2), unit: 's', note: `decode ${round(m('decode_s'), 2)}, cut & store ${round(m('cut_store_s'), 2)} (${chunks} chunks)` },
      { metric: 'plain ffmpeg decode to 16 kHz mono s16le', value: round(m('ffmpeg_s'), 2), unit: 's', note: 'same repetitions, alternated' },
      { metric: 'preparation / plain decode', value: round(prepRatio, 2), unit: '×', note: 'goal ≤ 1.1' },
      { metric: 'with VAD and plan / plain decode', value: round(totalRatio, 2), unit: '×', note: `total ${round(m('total_s'), 2)} s; VAD ${round(m('vad_s'), 2)} s = ${round((100 * m('vad_s')) / m('total_s'), 0)} % of it, plan ${round(m('plan_s'), 3)} s` },
      { metric: 'VAD real-time factor', value: round(vadRtf, 4), unit: '', note: `${round(1 / vadRtf, 0)}× real time` },
    ],
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
