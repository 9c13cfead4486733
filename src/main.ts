import { Logger } from '@nestjs/common';
import { createApp, loadEnvironment } from './bootstrap.js';
import { ConfigValidationError } from './config/app-config.js';

/**
 * Entry point: `node dist/src/main.js`. APP_ROLE=api|worker|all (default all).
 * A worker-only process still creates the Nest app (for DI and shutdown hooks) but listens on no port.
 */
async function main(): Promise<void> {
  let env;
  try {
    env = loadEnvironment();
  } catch (err) {
    if (err instanceof ConfigValidationError) {
      console.error(err.message);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const { config, engines } = env;
  const app = await createApp(config, engines);
  const logger = new Logger('Bootstrap');
  if (config.APP_ROLE === 'worker' && config.METRICS_PORT > 0) {
    await app.listen(config.METRICS_PORT, config.HOST);
    logger.log(`worker started (engines: ${engines.map((e) => e.id).join(', ')}; concurrency ${config.WORKER_CONCURRENCY}); /metrics on :${config.METRICS_PORT}`);
  } else if (config.APP_ROLE === 'worker') {
    await app.init();
    logger.log(`worker started (engines: ${engines.map((e) => e.id).join(', ')}; concurrency ${config.WORKER_CONCURRENCY})`);
  } else {
    await app.listen(config.PORT, config.HOST);
    logger.log(`gateway (${config.APP_ROLE}) listening on http://${config.HOST}:${config.PORT} (engines: ${engines.map((e) => e.id).join(', ')})`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
