import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../services/runtime/config.js';
import { createLogger } from '../services/observability/logger.js';
import { EMBEDDED_NATS_USER, ensureEmbeddedNatsPassword } from '../services/event-log/credentials.js';
import { NatsSetupRefused } from '../services/event-log/refusal.js';
import { ensureNatsServer } from './embedded/nats-binary.js';
import { ROUTE_PORT_OFFSET, startNatsCluster, type NatsClusterHandle } from './embedded/nats-cluster.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded/postgres.js';
import { StartRefused } from './embedded/refusal.js';
import { projectDirOf } from './project-dir.js';

/**
 * `npm run cluster`: Parley as several processes on this machine. A 3-node
 * nats-server cluster with JetStream (client ports NATS_PORT, +1, +2:
 * 4222, 4223, 4224; route ports 2000 above them: 6222, 6223, 6224; servers
 * n1..n3), the
 * embedded Postgres, and two platform processes on it: gateway 1 on PORT
 * (8080) with the workers (projectors, membership, analytics, notifier),
 * gateway 2 on PORT+1 (8081) without them. Streams, KV buckets and the object
 * store get STREAM_REPLICAS=3 (unless set otherwise); STREAM_SHARDS (default
 * 1) goes to both processes alike; each process leases its own node id.
 * Everything lives under <PARLEY_DATA_DIR>/cluster/, apart from
 * `npm start`'s data. Ctrl-C (or SIGTERM) stops the gateways, then Postgres
 * and the NATS servers.
 *
 * The gateways share one JWT secret (generated once into
 * cluster/jwt-secret unless AUTH_JWT_SECRET or a public key is set) with dev
 * tokens on, so a token from either works on both. Each keeps its own
 * embedded chDB (one per process); analytics fed by gateway 1's workers
 * are queried on gateway 1.
 */
const projectDir = projectDirOf(import.meta.url);
const runningFromSources = fileURLToPath(import.meta.url).endsWith('.ts');
const STOP_DEADLINE_MS = 15_000;

let config: Config;
try {
  // Replicated by default here: a cluster of three holds three copies (STREAM_REPLICAS overrides).
  config = loadConfig({ STREAM_REPLICAS: '3', ...process.env }, projectDir);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
const log = createLogger({ level: config.logLevel, base: { service: 'parley-cluster' } });
const clusterDir = path.join(config.dataDir, 'cluster');

let nats: NatsClusterHandle | undefined;
let postgres: EmbeddedPostgresHandle | undefined;
const gateways: ChildProcess[] = [];
let stopping = false;

async function jwtSecret(): Promise<Record<string, string>> {
  if (config.auth.jwtSecret || config.auth.jwtPublicKey) return {};
  const file = path.join(clusterDir, 'jwt-secret');
  let secret = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
  if (!secret) {
    secret = randomBytes(32).toString('hex');
    await fs.writeFile(file, secret + '\n', { mode: 0o600 });
  }
  // Without a configured key, dev tokens are on unless AUTH_DEV_TOKENS said otherwise (as for `npm start`).
  return { AUTH_JWT_SECRET: secret, AUTH_DEV_TOKENS: String(config.auth.devTokens) };
}

function startGateway(index: number, env: Record<string, string>, withWorkers: boolean): ChildProcess {
  const entry = runningFromSources
    ? ['--import', 'tsx', path.join(projectDir, 'ops', 'start.ts')]
    : [path.join(path.dirname(fileURLToPath(import.meta.url)), 'start.js')];
  const args = [...entry, '--exit-with-parent', ...(withWorkers ? [] : ['--no-workers'])];
  // Same process group: a terminal's Ctrl-C reaches each gateway directly, which stops itself.
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: 'inherit' });
  child.once('exit', (code, signal) => {
    if (stopping) return;
    // Exit 0: it was asked to stop (the terminal's Ctrl-C can reach it before this process acts on its own).
    if (code === 0) log.info('a gateway process stopped; stopping the cluster', { gateway: index });
    else log.error('a gateway process exited; stopping the cluster', { gateway: index, code, signal });
    void stop(code === 0 ? 0 : 1);
  });
  return child;
}

async function stop(code: number): Promise<never> {
  if (stopping) return new Promise<never>(() => undefined);
  stopping = true;
  setTimeout(() => {
    log.error('stopping did not finish in time; exiting', { ms: STOP_DEADLINE_MS });
    process.exit(1);
  }, STOP_DEADLINE_MS).unref();
  await Promise.all(
    gateways.map(
      (g) =>
        new Promise<void>((resolve) => {
          if (g.exitCode !== null || g.signalCode !== null) return resolve();
          g.once('exit', () => resolve());
          g.kill('SIGTERM');
        }),
    ),
  );
  await postgres?.stop().catch((err) => log.error('stopping Postgres failed', { err }));
  await nats?.stop().catch((err) => log.error('stopping the NATS cluster failed', { err }));
  log.info('cluster stopped; data kept', { dataDir: clusterDir });
  process.exit(code);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

async function main(): Promise<void> {
  await fs.mkdir(clusterDir, { recursive: true });
  const nlog = log.child({ dependency: 'nats-cluster' });
  const binary = await ensureNatsServer({ projectDir, log: nlog, ...(config.nats.serverBinary ? { explicitPath: config.nats.serverBinary } : {}) });
  const base = config.nats.embeddedPort;
  const natsAuth = { user: EMBEDDED_NATS_USER, password: ensureEmbeddedNatsPassword(config.dataDir) };
  nats = await startNatsCluster({
    binary: binary.path,
    dataDir: path.join(clusterDir, 'nats'),
    clientPorts: [base, base + 1, base + 2],
    routePorts: [base, base + 1, base + 2].map((p) => p + ROUTE_PORT_OFFSET),
    syncInterval: config.nats.syncInterval,
    // The data dir's password, as `npm start` uses: `parley` commands without NATS_URL reach node 1 (NATS_PORT) with it.
    auth: natsAuth,
    log: nlog,
    detached: true,
  });
  if (stopping) return;
  postgres = await startEmbeddedPostgres({
    dataDir: path.join(clusterDir, 'postgres'),
    port: config.postgres.embeddedPort,
    log: log.child({ dependency: 'postgres' }),
    detached: true,
  });
  const databaseUrl = await postgres.ensureDatabase('parley');
  if (stopping) return;
  const shared: Record<string, string> = {
    NATS_URL: nats.url,
    // In the environment, not the URL: a child's environment is readable by this account only (/proc/<pid>/environ).
    NATS_USER: natsAuth.user,
    NATS_PASSWORD: natsAuth.password,
    DATABASE_URL: databaseUrl,
    STREAM_REPLICAS: String(config.nats.replicas),
    // Every process must agree on the shard count (a start with another count than the streams hold is refused).
    STREAM_SHARDS: String(config.nats.shards),
    ...(await jwtSecret()),
  };
  const ports = [config.gateway.port, config.gateway.port + 1];
  // The first creates the streams and runs migrations before the second starts against them.
  gateways.push(startGateway(1, { ...shared, PORT: String(ports[0]), PARLEY_DATA_DIR: path.join(clusterDir, 'gateway-1') }, true));
  await waitHealthy(ports[0]!);
  if (stopping) return;
  gateways.push(startGateway(2, { ...shared, PORT: String(ports[1]), PARLEY_DATA_DIR: path.join(clusterDir, 'gateway-2') }, false));
  await waitHealthy(ports[1]!);
  log.info('parley cluster is up', {
    nats: nats.url,
    gateways: ports.map((p) => `http://${config.gateway.host}:${p}`),
    replicas: shared.STREAM_REPLICAS,
    shards: shared.STREAM_SHARDS,
    devTokens: shared.AUTH_DEV_TOKENS === 'true' ? `POST http://${config.gateway.host}:${ports[0]}/v1/dev/token {"userId":"alice"}` : 'disabled',
    dataDir: clusterDir,
  });
}

async function waitHealthy(port: number): Promise<void> {
  const url = `http://${config.gateway.host}:${port}/healthz`;
  const deadline = Date.now() + 120_000;
  while (!stopping) {
    const ok = await fetch(url).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`gateway on port ${port} not healthy after 120 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

main().catch(async (err) => {
  if (err instanceof StartRefused || err instanceof NatsSetupRefused) log.error(err.message);
  else log.error('cluster failed to start', { err });
  await stop(1);
});
