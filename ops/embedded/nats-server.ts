import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { canConnect, pickFreePort } from './free-port.js';
import type { EmbeddedLog } from './log.js';
import { reclaimOrphan, removeRecord, writeRecord } from './process-record.js';

export interface NatsServerOptions {
  binary: string;
  /** Holds nats.conf, the JetStream store and the pid record (nats-server.pid.json); reuse it to keep streams across restarts. */
  dataDir: string;
  /** Client port; 0 or omitted picks a free one. */
  port?: number;
  /** Monitoring port; monitoring is off unless given. */
  httpPort?: number;
  /** JetStream fsync period ("1s" default) or "always" (fsync every write, slow). */
  syncInterval?: string;
  /** Max message size in bytes; server default (1 MiB) when omitted. */
  maxPayload?: number;
  /** JetStream file storage limit in bytes; the size of the disk holding the store when omitted (see renderConfig). */
  maxFileStore?: number;
  /** Unique within a cluster (JetStream places replicas by it); `parley-embedded` when omitted. */
  serverName?: string;
  /** Join a cluster (ops/embedded/nats-cluster.ts): listen for routes on `port`, connect to the others' `routes`. */
  cluster?: { name: string; port: number; routes: string[]; advertise?: string };
  /**
   * Clients (and, in a cluster, routes) must log in as this user: without it
   * the server accepts any local connection. ops/stack.ts and ops/cluster.ts
   * always set it (services/event-log/credentials.ts); test harnesses may not.
   */
  auth?: { user: string; password: string };
  log: EmbeddedLog;
  /**
   * Run the server in its own process group, so a terminal's Ctrl-C reaches
   * only the parent, which then stops the server last, in order. Only for a
   * parent that handles SIGINT/SIGTERM itself (ops/start.ts): otherwise a
   * killed parent would leave the server running.
   */
  detached?: boolean;
}

export interface NatsServerHandle {
  url: string;
  port: number;
  pid: number;
  /** SIGTERM, then SIGKILL after 5 s; safe to call more than once. */
  stop(): Promise<void>;
  /** The server's last log lines (up to 50): what a caller reports when the server misbehaves. */
  recentLog(): string[];
}

const READY_TIMEOUT_MS = 20_000;
// Within the 10 s a stop of the whole platform may take (docs/operations.md).
const STOP_GRACE_MS = 5_000;
const PORT_ATTEMPTS = 3;

/** Starts nats-server with JetStream on 127.0.0.1 and resolves once it serves clients. */
export async function startNatsServer(opts: NatsServerOptions): Promise<NatsServerHandle> {
  await fs.mkdir(opts.dataDir, { recursive: true });
  // With a login, the store on disk must not be readable around it by another local account either.
  if (opts.auth) await fs.chmod(opts.dataDir, 0o700);
  // A server left behind by a killed earlier run holds the port and the store: stop it first.
  await reclaimOrphan(recordFile(opts), { signal: 'SIGTERM', graceMs: STOP_GRACE_MS, log: opts.log });
  // A picked port can be taken by someone else before nats-server binds it.
  for (let attempt = 1; ; attempt++) {
    const port = opts.port || (await pickFreePort());
    try {
      return await startOnce(opts, port);
    } catch (err) {
      const retry = !opts.port && attempt < PORT_ATTEMPTS && /address already in use/i.test(String(err));
      if (!retry) throw err;
      opts.log.warn('nats-server port was taken, retrying with another', { port });
    }
  }
}

/**
 * Without `max_file_store` nats-server limits JetStream to 75% of the disk's
 * free space *at start*, fixed for its lifetime: started on a nearly full
 * disk it would keep refusing writes (10023) after space is freed, until
 * restarted. With the disk's whole size as the limit, the disk itself is the
 * limit: a full disk refuses each append (10077, "no space left on device";
 * 2.10 standalone keeps JetStream enabled) and appends work again as soon as
 * space returns (docs/operations.md, "Disk full"; test/disk-full.e2e.test.ts).
 */
async function defaultMaxFileStore(storeDir: string): Promise<number> {
  await fs.mkdir(storeDir, { recursive: true });
  const st = await fs.statfs(storeDir);
  return st.blocks * st.bsize;
}

const recordFile = (opts: NatsServerOptions) => path.join(opts.dataDir, 'nats-server.pid.json');

function renderConfig(opts: NatsServerOptions, port: number, maxFileStore: number): string {
  const q = (s: string) => JSON.stringify(s); // NATS conf accepts JSON-style quoted strings
  const lines = [
    `server_name: ${q(opts.serverName ?? 'parley-embedded')}`,
    `listen: ${q(`127.0.0.1:${port}`)}`,
    ...(opts.maxPayload ? [`max_payload: ${opts.maxPayload}`] : []),
    ...(opts.httpPort ? [`http: ${q(`127.0.0.1:${opts.httpPort}`)}`] : []),
    ...(opts.auth ? [`authorization {`, `  user: ${q(opts.auth.user)}`, `  password: ${q(opts.auth.password)}`, `}`] : []),
    `jetstream {`,
    `  store_dir: ${q(path.join(opts.dataDir, 'jetstream'))}`,
    `  max_file_store: ${maxFileStore}`,
    // A periodic sync trades at most one interval of acknowledged writes on power
    // loss for throughput; a process crash loses nothing since writes reach the OS
    // immediately. 1s measured as fast as 2m (docs/operations.md).
    `  sync_interval: ${q(opts.syncInterval ?? '1s')}`,
    `}`,
    ...(opts.cluster
      ? [
          `cluster {`,
          `  name: ${q(opts.cluster.name)}`,
          `  listen: ${q(`127.0.0.1:${opts.cluster.port}`)}`,
          `  routes: [${opts.cluster.routes.map(q).join(', ')}]`,
          // The route address gossiped to the others (ops/chaos/route-proxy.ts points it where routes cannot bypass the proxy).
          ...(opts.cluster.advertise ? [`  advertise: ${q(opts.cluster.advertise)}`] : []),
          // Routes log in too: otherwise anyone who reaches a route port joins the cluster and reads everything.
          ...(opts.auth ? [`  authorization {`, `    user: ${q(opts.auth.user)}`, `    password: ${q(opts.auth.password)}`, `  }`] : []),
          `}`,
        ]
      : []),
  ];
  return lines.join('\n') + '\n';
}

async function startOnce(opts: NatsServerOptions, port: number): Promise<NatsServerHandle> {
  const { log } = opts;
  const confPath = path.join(opts.dataDir, 'nats.conf');
  // The config holds the password: this account only (chmod too, for a file an older version wrote 0644).
  await fs.writeFile(confPath, renderConfig(opts, port, opts.maxFileStore ?? (await defaultMaxFileStore(path.join(opts.dataDir, 'jetstream')))), {
    mode: 0o600,
  });
  await fs.chmod(confPath, 0o600);

  const started = Date.now();
  const child = spawn(opts.binary, ['-c', confPath], { stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false });
  const tail: string[] = [];
  let sawReady = false;
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 50) tail.shift();
      if (line.includes('Server is ready')) sawReady = true;
      log.debug('nats-server', { line });
    });
  }
  let spawnError: Error | undefined;
  // 'error' (e.g. ENOENT) comes without an 'exit', so either one ends the wait.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
  });

  // Don't leave an orphan holding the port and store if this process exits without stop().
  const killOnExit = () => child.kill('SIGTERM');
  process.once('exit', killOnExit);
  if (child.pid) await writeRecord(recordFile(opts), 'nats-server', child.pid);

  let stopping = false;
  const stop = once(async () => {
    stopping = true;
    process.removeListener('exit', killOnExit);
    if (isRunning(child)) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(killTimer);
    }
    await removeRecord(recordFile(opts));
  });

  const deadline = started + READY_TIMEOUT_MS;
  while (true) {
    if (spawnError || !isRunning(child)) {
      await stop();
      const why = spawnError?.message ?? `exit code ${child.exitCode ?? child.signalCode}`;
      throw new Error(`nats-server failed to start (${why}):\n${tail.join('\n')}`);
    }
    if (sawReady && (await canConnect(port))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nats-server not ready after ${READY_TIMEOUT_MS} ms:\n${tail.join('\n')}`);
    }
    await sleep(25);
  }

  child.once('exit', (code, signal) => {
    if (!stopping) log.error('nats-server exited unexpectedly', { code, signal, tail: tail.slice(-10) });
  });
  const pid = child.pid ?? 0;
  log.info('nats-server started', { port, pid, ms: Date.now() - started, dataDir: opts.dataDir });
  return { url: `nats://127.0.0.1:${port}`, port, pid, stop, recentLog: () => [...tail] };
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}
