import { loadConfig, type Config } from '../services/runtime/config.js';
import { enforceExposure, ExposureRefused } from '../services/runtime/exposure.js';
import { createLogger } from '../services/observability/logger.js';
import { NatsSetupRefused } from '../services/event-log/refusal.js';
import type { Role } from '../services/runtime/roles.js';
import { StartRefused } from './embedded/refusal.js';
import { projectDirOf } from './project-dir.js';
import { startRoles, type RoleProcess } from './platform.js';
import { startStack, type Stack } from './stack.js';

export interface RunOptions {
  /** The roles to run; undefined: PARLEY_ROLES (every role unless set). */
  roles?: Role[] | undefined;
  /** Stop when the parent process is gone (npm killed with SIGKILL, say). */
  exitWithParent?: boolean;
  /** The `service` field of every log line. */
  service?: string;
}

/** Everything stops within 10 s of the signal; the last second is for the servers to get their own. */
const SHUTDOWN_DEADLINE_MS = 9_000;
const PARENT_POLL_MS = 500;

/**
 * One Parley process until a signal: the configured dependencies (or the
 * embedded nats-server and Postgres when NATS_URL / DATABASE_URL are unset),
 * then the roles, stopped cleanly on SIGINT or SIGTERM with all data kept
 * under PARLEY_DATA_DIR (default ./.parley). The exit status is 0 for a
 * requested stop and 1 when the process cannot go on (a refused start, its
 * node id taken). `npm start`, `parley start` and each services/<role>/main.ts
 * run this.
 *
 * The embedded servers run in their own process groups, so a terminal's
 * Ctrl-C reaches only this process, which stops them after the services that
 * use them. Servers left behind by a killed run are found through their pid
 * records and stopped by the next start (ops/embedded/process-record.ts).
 */
export async function runProcess(options: RunOptions = {}): Promise<void> {
  const projectDir = projectDirOf(import.meta.url);
  let config: Config;
  try {
    config = loadConfig(process.env, projectDir);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
  const roles = options.roles ?? config.roles;
  const log = createLogger({ level: config.logLevel, base: { service: options.service ?? 'parley' } });

  let stack: Stack | undefined;
  let running: RoleProcess | undefined;
  let starting = true;
  let stopReason: string | null = null;
  /** 0 for a requested stop; 1 when the platform cannot go on (its node id was taken). */
  let exitCode = 0;

  const stopAndExit = async (code: number): Promise<never> => {
    await running?.stop().catch((err) => log.error('stopping the platform failed', { err }));
    await stack?.stop().catch((err) => log.error('stopping the dependencies failed', { err }));
    if (stopReason) log.info('stopped; data kept', { dataDir: config.dataDir });
    process.exit(code);
  };

  const requestStop = (reason: string, code = 0): void => {
    if (stopReason) return; // a second signal (npm forwards the one the terminal also sent us) changes nothing
    stopReason = reason;
    exitCode = code;
    log.info('shutting down', { signal: reason });
    // Whatever hangs, exit in time: the embedded servers get their stop signal from the 'exit' handlers.
    setTimeout(() => {
      log.error('shutdown did not finish in time; exiting', { ms: SHUTDOWN_DEADLINE_MS });
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    // While starting, the start stops what has started once the current step returns.
    if (!starting) void stopAndExit(exitCode);
  };

  process.on('SIGINT', () => requestStop('SIGINT'));
  process.on('SIGTERM', () => requestStop('SIGTERM'));
  if (options.exitWithParent) {
    // Reparented (to init or a subreaper): whoever started us is gone and nobody will stop us.
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) requestStop('parent exited');
    }, PARENT_POLL_MS).unref();
  }

  try {
    // Before anything starts (nats-server, Postgres): a refusal is immediate and leaves nothing behind.
    if (roles.includes('gateway')) enforceExposure(config);
    stack = await startStack(config, log, projectDir, { ownsSignals: true });
    if (stopReason) return void (await stopAndExit(0));
    running = await startRoles(config, log, {
      natsUrl: stack.natsUrl,
      databaseUrl: stack.databaseUrl,
      roles,
      onNodeIdLost: (reason) => requestStop(`node id lease lost (${reason})`, 1),
    });
    if (stopReason) return void (await stopAndExit(0));
    starting = false;
    const port = running.gateway?.port ?? running.health?.port;
    const base = `http://${config.gateway.host}:${port}`;
    log.info('parley is up', {
      roles: roles.join(','),
      ...Object.fromEntries(running.roleStatus().map((s) => [s.role, s.state === 'standby' ? `standby (held by ${s.holder})` : s.state])),
      ...(running.gateway ? { http: base, websocket: `ws://${config.gateway.host}:${port}/v1/ws` } : {}),
      health: `${base}/healthz`,
      ...(running.gateway ? { devTokens: config.auth.devTokens ? `POST ${base}/v1/dev/token {"userId":"alice"}` : 'disabled' } : {}),
      dataDir: config.dataDir,
      pid: process.pid,
    });
  } catch (err) {
    // A refusal is one line saying what to set; anything else keeps its stack for diagnosis.
    if (err instanceof ExposureRefused || err instanceof StartRefused || err instanceof NatsSetupRefused) log.error(err.message);
    else log.error('failed to start', { err });
    await stopAndExit(1);
  }
}
