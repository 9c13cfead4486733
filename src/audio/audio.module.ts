import { Module } from '@nestjs/common';
import { AudioService } from './audio.service.js';
import { UrlFetcher, urlFetcherProvider } from './url-fetcher.js';
import { VoiceActivityDetector } from './vad.js';

/** Audio intake: fetching by URL, validation and decoding (ffmpeg/ffprobe); voice activity detection (Silero VAD). */
@Module({ providers: [AudioService, urlFetcherProvider, VoiceActivityDetector], exports: [AudioService, UrlFetcher, VoiceActivityDetector] })
export class AudioModule {}
