import { Module } from '@nestjs/common';
import { AudioService } from './audio.service.js';

/** Audio intake and decoding (ffmpeg/ffprobe). */
@Module({ providers: [AudioService], exports: [AudioService] })
export class AudioModule {}
