import { Injectable } from '@nestjs/common';
import { stat } from 'node:fs/promises';
import { AppConfig } from '../config/app-config.js';
import { runProcess } from '../common/process.js';
import { AudioError, toolMessage } from './audio.errors.js';
import { parseSilencedetect, type Silence } from './silences.js';
import { assertRiffComplete, readHead, readHeader } from './header-probe.js';
import { assertDecodableIfWav, readWavHeader } from './wav.js';

/** What a submission's probe says about an input file (ffprobe's names, whichever read it). */
export interface AudioProbe {
  /** ffprobe's container name(s), e.g. `wav`, `mp3`, `mov,mp4,m4a,3gp,3g2,mj2`. */
  format_name: string;
  /** Seconds, or null when the container does not say. */
  duration_sec: number | null;
  /** Codec of the first audio stream, e.g. `pcm_s16le`, `mp3`, `aac`. */
  codec: string;
  /** Hz. */
  sample_rate: number;
  channels: number;
  /** True when the container also holds a video stream (audio is extracted from it). */
  has_video: boolean;
  /** Bytes. */
  size_bytes: number;
  /** `header`: read in-process from the container header (duration as the header claims it); `ffprobe`: by ffprobe. */
  probed_by: 'header' | 'ffprobe';
}

/** A 16 kHz mono 16-bit PCM WAV produced by normalize(). */
export interface NormalizedAudio {
  path: string;
  /** Seconds, measured on the decoded output (not the container's claim). */
  duration_sec: number;
  /** Peak level in dBFS from ffmpeg's volumedetect (-91 dB = digital silence). */
  max_volume_db: number | null;
}

interface FfprobeJson {
  format?: { format_name?: string; duration?: string };
  streams?: { codec_type?: string; codec_name?: string; sample_rate?: string; channels?: number; duration?: string }[];
}

/**
 * Audio intake on top of ffmpeg/ffprobe (Debian `ffmpeg`, FFMPEG_PATH / FFPROBE_PATH): validation
 * of uploads, extraction from video containers and decoding to the 16 kHz mono PCM every engine
 * receives.
 */
@Injectable()
export class AudioService {
  constructor(private readonly config: AppConfig) {}

  /**
   * Describes the audio in `filePath` for a submission, cheaply. With INGEST_PROBE=header (the
   * default) the container header is read in-process (header-probe.ts) and ffprobe runs only
   * when the header cannot tell (other containers, video, a damaged header); with
   * INGEST_PROBE=ffprobe it always runs ffprobe. Neither decodes: audio whose header reads well
   * but whose data does not decode fails in the worker's intake (AUDIO_DECODE_FAILED).
   *
   * @param sizeBytes the file's size when the caller knows it (multer does), saving a stat.
   * @throws AudioError AUDIO_EMPTY (0 bytes), AUDIO_UNREADABLE (ffprobe cannot parse it),
   *   AUDIO_NO_STREAM (no audio stream), AUDIO_TRUNCATED (a WAV or MP3 shorter than its header declares).
   */
  async probe(filePath: string, signal?: AbortSignal, sizeBytes?: number): Promise<AudioProbe> {
    const size = sizeBytes ?? (await stat(filePath)).size;
    if (size === 0) throw new AudioError('AUDIO_EMPTY', 'the file is empty (0 bytes)', { details: { path: filePath } });
    // Header-only checks first, whichever probe runs: a WAV no decoder can read is refused with
    // the reason. The file's start is read once for these checks and the header probe.
    const head = await readHead(filePath);
    const wav = await assertDecodableIfWav({ path: filePath, head, size });
    if (this.config.INGEST_PROBE === 'header') {
      const header = await readHeader(filePath, size, { head, wav });
      if (header) return { ...header, has_video: false, size_bytes: size, probed_by: 'header' };
    }
    return this.ffprobe(filePath, signal, size, false);
  }

  /**
   * Validates with ffprobe (a child process) that `filePath` holds audio and describes it: the
   * authoritative reading for every container ffmpeg knows, video included.
   *
   * @param size bytes of the file, when the caller has stat'ed it already.
   * @param checkWav run wav.ts's header checks first (false when `probe` already did).
   * @throws AudioError AUDIO_EMPTY (0 bytes), AUDIO_UNREADABLE (ffprobe cannot parse it),
   *   AUDIO_NO_STREAM (no audio stream), AUDIO_TRUNCATED (a WAV shorter than its header declares),
   *   AUDIO_UNSUPPORTED_FORMAT / AUDIO_NO_SAMPLES (a WAV header no decoder can use, see wav.ts).
   */
  async ffprobe(filePath: string, signal?: AbortSignal, size?: number, checkWav = true): Promise<AudioProbe> {
    size ??= (await stat(filePath)).size;
    if (size === 0) throw new AudioError('AUDIO_EMPTY', 'the file is empty (0 bytes)', { details: { path: filePath } });
    if (checkWav) await assertDecodableIfWav(filePath);
    const result = await runProcess(
      this.config.FFPROBE_PATH,
      ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', filePath],
      { signal },
    );
    if (result.code !== 0) {
      const reason = toolMessage(result.stderr, [filePath]) || 'unknown error';
      throw new AudioError('AUDIO_UNREADABLE', `not a readable audio or video file (ffprobe: ${reason})`, {
        details: { path: filePath, exit_code: result.code, stderr_tail: result.stderr.slice(-2000) },
      });
    }
    const info = JSON.parse(result.stdout) as FfprobeJson;
    const streams = info.streams ?? [];
    const audio = streams.find((s) => s.codec_type === 'audio');
    const hasVideo = streams.some((s) => s.codec_type === 'video');
    const formatName = info.format?.format_name ?? 'unknown';
    if (!audio) {
      throw new AudioError(
        'AUDIO_NO_STREAM',
        `the ${hasVideo ? 'video' : 'file'} has no audio stream (container: ${formatName})`,
        { publicFields: { format_name: formatName, has_video: hasVideo }, details: { path: filePath } },
      );
    }
    if (formatName === 'wav') await assertRiffComplete(filePath, size);
    const duration = Number(audio.duration ?? info.format?.duration);
    return {
      format_name: formatName,
      duration_sec: Number.isFinite(duration) ? duration : null,
      codec: audio.codec_name ?? 'unknown',
      sample_rate: Number(audio.sample_rate ?? 0),
      channels: audio.channels ?? 0,
      has_video: hasVideo,
      size_bytes: size,
      probed_by: 'ffprobe',
    };
  }

  /**
   * Decodes the first audio stream of any container ffmpeg reads (video included) to a
   * 16 kHz, mono, 16-bit PCM WAV at `outputPath`, and measures its duration and peak level.
   *
   * @param options.channel keep only this 0-based channel instead of downmixing (multichannel jobs).
   * @param options.startSec / options.endSec cut a piece (seconds); on PCM input the cut is sample-exact.
   * @throws AudioError AUDIO_DECODE_FAILED when ffmpeg fails or produces no samples (paths and
   *   ffmpeg's stderr in `details` only); the abort reason when aborted.
   */
  async normalize(
    inputPath: string,
    outputPath: string,
    options: { signal?: AbortSignal; channel?: number; startSec?: number; endSec?: number } = {},
  ): Promise<NormalizedAudio> {
    const range: string[] = [];
    if (options.startSec !== undefined && options.startSec > 0) range.push('-ss', options.startSec.toFixed(6));
    if (options.endSec !== undefined) range.push('-to', options.endSec.toFixed(6));
    const filters = [...(options.channel !== undefined ? [`pan=mono|c0=c${options.channel}`] : []), 'volumedetect'];
    const result = await runProcess(
      this.config.FFMPEG_PATH,
      [
        '-nostdin', '-hide_banner', '-nostats', '-y',
        ...range,
        '-i', inputPath,
        '-map', '0:a:0', '-vn', '-sn', '-dn',
        '-af', filters.join(','),
        '-ac', '1', '-ar', '16000', '-c:a', 'pcm_s16le',
        '-fflags', '+bitexact', '-f', 'wav',
        outputPath,
      ],
      { signal: options.signal, stderrLimit: 64 * 1024 },
    );
    if (result.code !== 0) {
      const reason = toolMessage(result.stderr, [inputPath, outputPath]);
      throw new AudioError('AUDIO_DECODE_FAILED', `ffmpeg could not decode the audio${reason ? `: ${reason}` : ''}`, {
        details: { input: inputPath, output: outputPath, exit_code: result.code, stderr_tail: result.stderr.slice(-2000) },
      });
    }
    // +bitexact keeps the header at the canonical 44 bytes (pocketsphinx 5prealpha reads a LIST chunk
    // as samples, which shifts its frames); the duration is read from the header all the same.
    const header = await readWavHeader(outputPath);
    const duration = header.dataBytes / (header.sampleRate * header.blockAlign);
    if (duration <= 0) throw new AudioError('AUDIO_DECODE_FAILED', 'the audio stream decoded to zero samples: its audio data is damaged, or holds no sound', { details: { input: inputPath, output: outputPath } });
    const peak = /max_volume:\s*(-?[\d.]+|-inf) dB/.exec(result.stderr);
    return {
      path: outputPath,
      duration_sec: Math.round(duration * 1e6) / 1e6,
      max_volume_db: peak ? (peak[1] === '-inf' ? -91 : Number(peak[1])) : null,
    };
  }

  /**
   * Finds pauses with ffmpeg's `silencedetect` (level below `noiseDb` dBFS for at least
   * `minSilenceSec` seconds) in a 16 kHz mono WAV.
   * @returns pauses in seconds from the start, in order.
   */
  async detectSilences(wavPath: string, durationSec: number, options: { noiseDb: number; minSilenceSec: number; signal?: AbortSignal }): Promise<Silence[]> {
    const result = await runProcess(
      this.config.FFMPEG_PATH,
      ['-nostdin', '-hide_banner', '-nostats', '-i', wavPath, '-af', `silencedetect=noise=${options.noiseDb}dB:d=${options.minSilenceSec}`, '-f', 'null', '-'],
      { signal: options.signal, stderrLimit: 4 * 1024 * 1024 },
    );
    if (result.code !== 0) {
      throw new AudioError('AUDIO_DECODE_FAILED', `ffmpeg silencedetect failed: ${toolMessage(result.stderr, [wavPath])}`, {
        details: { path: wavPath, exit_code: result.code, stderr_tail: result.stderr.slice(-2000) },
      });
    }
    return parseSilencedetect(result.stderr, durationSec);
  }
}
