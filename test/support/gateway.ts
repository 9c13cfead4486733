import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/bootstrap.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import type { TranscriptionEngine } from '../../src/engines/engine.spec.js';

/** A running gateway (in this process) listening on an ephemeral port. */
export interface TestGateway {
  app: INestApplication;
  url: string;
  config: AppConfig;
  db: DataSource;
  close(): Promise<void>;
}

/**
 * Boots the real application wiring (createApp, the same as main.ts) for `config.APP_ROLE`.
 * `engines` defaults to the environment's engines (pocketsphinx).
 */
export async function startGateway(config: AppConfig, engines?: TranscriptionEngine[]): Promise<TestGateway> {
  const app = await createApp(config, engines ?? buildEngines({}).engines);
  let url = '';
  if (config.APP_ROLE === 'worker') {
    await app.init();
  } else {
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as AddressInfo;
    url = `http://127.0.0.1:${address.port}`;
  }
  return { app, url, config, db: app.get(DataSource), close: () => app.close() };
}
