import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { LocalStorageDriver } from './local-storage.driver.js';
import { STORAGE_DRIVER } from './storage.driver.js';
import { TempWorkspaceService } from './temp-workspace.service.js';

/** Object storage for uploaded audio (driver chosen by config) and per-job temp workspaces. */
@Global()
@Module({
  providers: [
    { provide: STORAGE_DRIVER, inject: [AppConfig], useFactory: (config: AppConfig) => new LocalStorageDriver(config.DATA_DIR) },
    TempWorkspaceService,
  ],
  exports: [STORAGE_DRIVER, TempWorkspaceService],
})
export class StorageModule {}
