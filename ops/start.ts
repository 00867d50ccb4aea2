import { loadConfig, type Config } from '../services/shared/config.js';
import { enforceExposure, ExposureRefused } from '../services/shared/exposure.js';
import { createLogger } from '../services/shared/logger.js';
import { NatsSetupRefused } from '../services/shared/nats/refusal.js';
import { StartRefused } from './embedded/refusal.js';
import { projectDirOf } from './project-dir.js';
import { startPlatform, type Platform } from './platform.js';
import { startStack, type Stack } from './stack.js';

/**
 * `npm start`: the whole platform on embedded defaults (or the servers named
 * by NATS_URL / DATABASE_URL / CLICKHOUSE_URL), stopped cleanly on SIGINT or
 * SIGTERM with all data kept under PARLEY_DATA_DIR (default ./.parley).
 *
 * `npm start` runs this file as npm's direct child (`exec node --import tsx`:
 * no shell or tsx process in between that would swallow npm's forwarded
 * signal), and with --exit-with-parent it also stops when npm is gone
 * (killed with SIGKILL, say). The embedded servers run in their own process
 * groups, so a terminal's Ctrl-C reaches only this process, which stops
 * them after the services that use them. Servers left behind by a killed run
 * are found through their pid records and stopped by the next start
 * (ops/embedded/process-record.ts).
 */
const projectDir = projectDirOf(import.meta.url);
/** Everything stops within 10 s of the signal; the last second is for the servers to get their own. */
const SHUTDOWN_DEADLINE_MS = 9_000;
const PARENT_POLL_MS = 500;

let config: Config;
try {
  config = loadConfig(process.env, projectDir);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
const log = createLogger({ level: config.logLevel, base: { service: 'parley' } });

let stack: Stack | undefined;
let platform: Platform | undefined;
let starting = true;
let stopReason: string | null = null;
/** 0 for a requested stop; 1 when the platform cannot go on (its node id was taken). */
let exitCode = 0;

function requestStop(reason: string, code = 0): void {
  if (stopReason) return; // a second signal (npm forwards the one the terminal also sent us) changes nothing
  stopReason = reason;
  exitCode = code;
  log.info('shutting down', { signal: reason });
  // Whatever hangs, exit in time: the embedded servers get their stop signal from the 'exit' handlers.
  setTimeout(() => {
    log.error('shutdown did not finish in time; exiting', { ms: SHUTDOWN_DEADLINE_MS });
    process.exit(1);
  }, SHUTDOWN_DEADLINE_MS).unref();
  // While starting, main() stops what has started once the current step returns.
  if (!starting) void stopAndExit(exitCode);
}

async function stopAndExit(code: number): Promise<never> {
  await platform?.stop().catch((err) => log.error('stopping the platform failed', { err }));
  await stack?.stop().catch((err) => log.error('stopping the dependencies failed', { err }));
  if (stopReason) log.info('stopped; data kept', { dataDir: config.dataDir });
  process.exit(code);
}

process.on('SIGINT', () => requestStop('SIGINT'));
process.on('SIGTERM', () => requestStop('SIGTERM'));
if (process.argv.includes('--exit-with-parent')) {
  // Reparented (to init or a subreaper): whoever started us is gone and nobody will stop us.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) requestStop('parent exited');
  }, PARENT_POLL_MS).unref();
}

async function main(): Promise<void> {
  // Before anything starts (nats-server, Postgres): a refusal is immediate and leaves nothing behind.
  enforceExposure(config);
  stack = await startStack(config, log, projectDir, { ownsSignals: true });
  if (stopReason) return void (await stopAndExit(0));
  platform = await startPlatform(config, log, { natsUrl: stack.natsUrl, databaseUrl: stack.databaseUrl, onNodeIdLost: (reason) => requestStop(`node id lease lost (${reason})`, 1) });
  if (stopReason) return void (await stopAndExit(0));
  starting = false;
  const base = `http://${config.gateway.host}:${platform.gateway.port}`;
  log.info('parley is up', {
    http: base,
    websocket: `ws://${config.gateway.host}:${platform.gateway.port}/v1/ws`,
    health: `${base}/healthz`,
    devTokens: config.auth.devTokens ? `POST ${base}/v1/dev/token {"userId":"alice"}` : 'disabled',
    dataDir: config.dataDir,
    pid: process.pid,
  });
}

main().catch(async (err) => {
  // A refusal is one line saying what to set; anything else keeps its stack for diagnosis.
  if (err instanceof ExposureRefused || err instanceof StartRefused || err instanceof NatsSetupRefused) log.error(err.message);
  else log.error('failed to start', { err });
  await stopAndExit(1);
});
