import { Module } from '@nestjs/common';
import { AudioService } from './audio.service.js';
import { UrlFetcher, urlFetcherProvider } from './url-fetcher.js';

/** Audio intake: fetching by URL, validation and decoding (ffmpeg/ffprobe). */
@Module({ providers: [AudioService, urlFetcherProvider], exports: [AudioService, UrlFetcher] })
export class AudioModule {}
