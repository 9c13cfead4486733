import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller.js';

/** Liveness/readiness over HTTP (terminus). Takes the TranscriptionModule instance for its Redis ping. */
@Module({})
export class HealthModule {
  static register(transcription: DynamicModule): DynamicModule {
    return { module: HealthModule, imports: [TerminusModule, transcription], controllers: [HealthController] };
  }
}
