import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../services/shared/config.js';
import { createLogger } from '../services/shared/logger.js';
import { startPlatform } from './platform.js';
import { startStack } from './stack.js';

/**
 * `npm start`: the whole platform on embedded defaults (or the servers named
 * by NATS_URL / DATABASE_URL / CLICKHOUSE_URL), stopped cleanly on Ctrl-C or
 * SIGTERM with all data kept under PARLEY_DATA_DIR (default ./.parley).
 */
const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const config = loadConfig(process.env, projectDir);
const log = createLogger({ level: config.logLevel, base: { service: 'parley' } });

async function main(): Promise<void> {
  // This process handles SIGINT/SIGTERM and stops everything in order.
  const stack = await startStack(config, log, projectDir, { ownsSignals: true });
  let platform;
  try {
    platform = await startPlatform(config, log, { natsUrl: stack.natsUrl, databaseUrl: stack.databaseUrl });
  } catch (err) {
    await stack.stop();
    throw err;
  }
  const base = `http://${config.gateway.host}:${platform.gateway.port}`;
  log.info('parley is up', {
    http: base,
    websocket: `ws://${config.gateway.host}:${platform.gateway.port}/v1/ws`,
    health: `${base}/healthz`,
    devTokens: config.auth.devTokens ? `POST ${base}/v1/dev/token {"userId":"alice"}` : 'disabled',
    dataDir: config.dataDir,
  });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    await platform.stop();
    await stack.stop();
    log.info('stopped; data kept', { dataDir: config.dataDir });
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err) => {
  log.error('failed to start', { err });
  process.exit(1);
});
