import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEnv, AppConfig } from '../../src/config/app-config.js';

/** The fixtures directory: SHARED_DIR, or ../shared beside the project root. */
export const SHARED_DIR = process.env.SHARED_DIR ?? path.resolve(process.cwd(), '..', 'shared');
export const FIXTURES = path.join(SHARED_DIR, 'fixtures', 'audio');
export const fixture = (name: string) => path.join(FIXTURES, name);

/** Same defaults as scripts/test.sh (PROFILE=test). */
export const TEST_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://gateway:gateway@127.0.0.1:54339/gateway';
export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:63809';
export const PG_SUPERUSER_URL = process.env.PG_SUPERUSER_URL ?? 'postgres://postgres@127.0.0.1:54339/postgres';

/** A fresh scratch directory under the OS temp dir. */
export const scratchDir = (prefix: string) => mkdtempSync(path.join(os.tmpdir(), `gw-test-${prefix}-`));

/**
 * A validated AppConfig for one test suite: its own queue prefix (so suites never see each
 * other's jobs), its own storage and temp dirs, the test Postgres and Redis.
 */
export function testConfig(overrides: Record<string, string> = {}): AppConfig {
  const id = Math.random().toString(36).slice(2, 8);
  const { value, problems } = parseEnv(AppConfig, {
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: `test-${id}`,
    DATA_DIR: scratchDir('data'),
    TEMP_DIR: scratchDir('tmp'),
    PORT: '0',
    HOST: '127.0.0.1',
    JOB_BACKOFF_MS: '200',
    ENGINE_HEALTH_INTERVAL: '1',
    ...overrides,
  });
  if (problems.length) throw new Error(problems.join('; '));
  return value;
}
