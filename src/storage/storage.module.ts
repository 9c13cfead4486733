import { Global, Logger, Module } from '@nestjs/common';
import path from 'node:path';
import { AppConfig } from '../config/app-config.js';
import { LocalStorageDriver } from './local-storage.driver.js';
import { MinioStorageDriver } from './minio-storage.driver.js';
import { AudioRetentionService } from './retention.js';
import { STORAGE_DRIVER, type StorageDriver } from './storage.driver.js';
import { TempWorkspaceService } from './temp-workspace.service.js';

/**
 * The StorageDriver STORAGE_DRIVER selects: `local` (files under DATA_DIR) or `minio` (the
 * MINIO_* settings). The minio driver spools stream sources under TEMP_DIR/uploads, whose stale
 * entries TempWorkspaceService removes at startup.
 */
export function createStorageDriver(config: AppConfig): StorageDriver {
  switch (config.STORAGE_DRIVER) {
    case 'local':
      return new LocalStorageDriver(config.DATA_DIR);
    case 'minio':
      return new MinioStorageDriver({
        endpoint: config.MINIO_ENDPOINT,
        port: config.MINIO_PORT,
        useSSL: config.MINIO_USE_SSL,
        accessKey: config.MINIO_ACCESS_KEY,
        secretKey: config.MINIO_SECRET_KEY,
        bucket: config.MINIO_BUCKET_NAME,
        region: config.MINIO_REGION,
        publicEndpoint: config.MINIO_PUBLIC_ENDPOINT,
        spoolDir: path.join(config.TEMP_DIR, 'uploads'),
      });
    default: {
      const unknown: never = config.STORAGE_DRIVER;
      throw new Error(`unknown STORAGE_DRIVER ${String(unknown)}`);
    }
  }
}

/**
 * Object storage for uploaded audio (driver chosen by config), per-job temp workspaces, and the
 * storage side of audio retention. With the minio driver the bucket is created at boot when
 * missing, by API and worker processes alike; boot fails when the store cannot be reached, so a
 * misconfigured process never accepts uploads it cannot store.
 */
@Global()
@Module({
  providers: [
    {
      provide: STORAGE_DRIVER,
      inject: [AppConfig],
      useFactory: async (config: AppConfig): Promise<StorageDriver> => {
        const driver = createStorageDriver(config);
        if (driver instanceof MinioStorageDriver) {
          const { created } = await driver.ensureBucket();
          new Logger(StorageModule.name).log(`${created ? 'created' : 'using'} bucket ${driver.bucket} at ${config.MINIO_ENDPOINT}`);
        }
        return driver;
      },
    },
    TempWorkspaceService,
    AudioRetentionService,
  ],
  exports: [STORAGE_DRIVER, TempWorkspaceService, AudioRetentionService],
})
export class StorageModule {}
