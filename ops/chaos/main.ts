import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { subjectsFor } from '../../contracts/index.js';
import { loadConfig } from '../../services/runtime/config.js';
import { createLogger } from '../../services/observability/logger.js';
import { maxEventBytes } from '../../services/runtime/runtime.js';
import { pickFreePort } from '../embedded/free-port.js';
import { ensureNatsServer } from '../embedded/nats-binary.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../embedded/postgres.js';
import { projectDirOf } from '../project-dir.js';
import {
  activeWorkerKill,
  natsFreeze,
  natsKill,
  natsPartition,
  postgresRestart,
  processKill,
  projectorActive,
  type Fault,
  type FaultContext,
  type FaultOutcome,
} from './faults.js';
import { fetchHistory } from './history.js';
import { Ledger, type StoredMessage } from './ledger.js';
import { startLoad, type Load } from './load.js';
import { startChaosNats, type ChaosNats } from './nats-nodes.js';
import { faultWindows, formatWindows } from './report.js';
import { StreamProbe } from './stream-probe.js';
import { Supervisor } from './supervisor.js';

/**
 * `npm run chaos` (`-- --smoke` for a short run, `-- --keep` to keep the run
 * directory): Parley as a replicated system on this machine, under faults,
 * with a ledger that proves nothing acked is lost, duplicated or misordered.
 * Everything listens on 127.0.0.1 only and lives in a temporary directory:
 *
 * - 3 nats-servers with JetStream, routes through the harness's TCP proxy
 *   (route-proxy.ts: partitions without network namespaces), streams R3;
 * - its own Postgres;
 * - gateway gw1 with the workers (projector, membership, analytics,
 *   notifier) and gateway gw2 alone, each a process group of its own;
 * - the load (load.ts, device.ts): users with one device per gateway, acked
 *   sends retried with the same clientMsgId, devices dropping and resuming;
 * - the faults (faults.ts), one after another, then every fault healed, the
 *   read model caught up, a final resume of every device, and the verdict.
 *
 * The last line is `chaos: acked=N lost=L duplicated=D misordered=M`; the exit
 * status is 0 only when L, D and M are 0, N reaches the minimum (2000; 300
 * for --smoke), every device's final resume was complete and the checks ran.
 * The run directory (process logs) is kept when the run fails.
 */
const projectDir = projectDirOf(import.meta.url);
const smoke = process.argv.includes('--smoke');
const keep = process.argv.includes('--keep');
const MIN_ACKED = smoke ? 300 : 2000;
/** About a second of load: a consumer this close to the stream's end has caught up. */
const CAUGHT_UP_LAG = 50;
const NAMESPACE = 'chaos';
/** No fault starts later than this into the run (the rest, drain and checks, then fits in 10 minutes). */
const FAULT_PHASE_LIMIT_MS = 6 * 60_000;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const started = Date.now();

const progress = (msg: string) => process.stdout.write(`[chaos +${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}\n`);

// STREAM_SHARDS comes from the environment (default 1) and is handed to every process, so all agree on the layout.
const config = loadConfig({ ...process.env, STREAM_REPLICAS: '3' }, projectDir);
const subjects = subjectsFor(NAMESPACE, config.nats.shards);
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-chaos-'));
// Under root, Postgres runs as `postgres`, which must traverse the run directory.
fs.chmodSync(runDir, 0o711);
const logFile = path.join(runDir, 'harness.log');
const logStream = fs.createWriteStream(logFile, { flags: 'a' });
const log = createLogger({ level: 'debug', write: (line) => logStream.write(line + '\n'), base: { service: 'chaos' } });

const supervisor = new Supervisor();
let nats: ChaosNats | undefined;
let postgres: EmbeddedPostgresHandle | undefined;
let probe: StreamProbe | undefined;
let load: Load | undefined;
let cleaning: Promise<void> | undefined;
/** Faults left out because the run ran out of time: the run then fails. */
const skipped: string[] = [];

function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    await load?.close().catch(() => undefined);
    await supervisor.stopAll(4000).catch(() => undefined);
    await probe?.close();
    await postgres?.stop().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
  })());
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    progress(`${sig}: stopping everything`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  progress(`run directory ${runDir}${smoke ? ' (smoke)' : ''}`);
  const binary = await ensureNatsServer({ projectDir, log, ...(config.nats.serverBinary ? { explicitPath: config.nats.serverBinary } : {}) });
  const pgPort = await pickFreePort();
  const startPostgres = () =>
    startEmbeddedPostgres({
      dataDir: path.join(runDir, 'postgres'),
      port: pgPort,
      extraFlags: ['-c', 'max_connections=300'],
      log: log.child({ dependency: 'postgres' }),
      detached: true,
    });
  [nats, postgres] = await Promise.all([
    startChaosNats({
      binary: binary.path,
      dataDir: path.join(runDir, 'nats'),
      maxPayload: Math.max(1 << 20, maxEventBytes(config)),
      log: log.child({ dependency: 'nats' }),
    }),
    startPostgres(),
  ]);
  const databaseUrl = await postgres.ensureDatabase('parley');
  // The NATS faults target shard 0's stream leader; recovery and catch-up are checked on every shard's stream.
  probe = await StreamProbe.open(
    nats.url,
    Array.from({ length: subjects.shards }, (_, k) => subjects.stream(k)),
  );
  await probe.waitPlacement(3, 60_000);
  progress(`nats cluster ${nats.url} (routes through the proxy), postgres on ${pgPort}, ${subjects.shards} stream shard(s)`);

  const namespace = NAMESPACE;
  const shared: Record<string, string> = {
    NATS_URL: nats.url,
    DATABASE_URL: databaseUrl,
    STREAM_REPLICAS: '3',
    STREAM_SHARDS: String(subjects.shards),
    PARLEY_NAMESPACE: namespace,
    HOST: '127.0.0.1',
    AUTH_JWT_SECRET: randomBytes(32).toString('hex'),
    AUTH_DEV_TOKENS: 'true',
    // The load is the chaos harness, not abuse: per-user limits must not shape it.
    RATE_SENDS_PER_SECOND: '10000',
    RATE_FRAMES_PER_SECOND: '10000',
    RATE_HTTP_PER_SECOND: '10000',
    LOG_LEVEL: 'info',
  };
  const entry = ['--import', 'tsx', path.join(projectDir, 'ops', 'start.ts'), '--exit-with-parent'];
  const role = (name: string, roles: string) => {
    const port = ports.shift()!;
    return supervisor.add({
      name,
      args: [...entry, '--roles', roles],
      env: { ...shared, PORT: String(port), PARLEY_DATA_DIR: path.join(runDir, name) },
      httpPort: port,
      logFile: path.join(runDir, `${name}.log`),
    });
  };
  const ports = [await pickFreePort(), await pickFreePort(), await pickFreePort(), await pickFreePort()];
  const gatewayPorts = ports.slice(0, 2);
  const gw1 = role('gw1', 'gateway');
  const gw2 = role('gw2', 'gateway');
  // Two worker processes with every single-active role: one holds the leases, the other waits to take over.
  const wk1 = role('wk1', 'workers');
  const wk2 = role('wk2', 'workers');
  // The first creates the streams and runs the migrations; wk1 before wk2, so wk1 is the active one.
  await gw1.start(120_000);
  await Promise.all([gw2.start(120_000), wk1.start(120_000)]);
  await wk2.start(120_000);
  progress(`gateways up on ${gatewayPorts.join(', ')}; workers wk1 (active: ${await projectorActive(wk1)}) and wk2 (standby)`);

  await probe.waitCurrent(3, 60_000);

  const ledger = new Ledger();
  load = await startLoad({
    gateways: [
      { name: 'gw1', port: gatewayPorts[0]! },
      { name: 'gw2', port: gatewayPorts[1]! },
    ],
    users: smoke ? 4 : 6,
    groups: smoke ? 2 : 4,
    ratePerSecond: smoke ? 25 : 30,
    maxSends: smoke ? 1500 : 6000,
    bounceEveryMs: 1500,
    ledger,
    shards: { count: subjects.shards, of: (id) => subjects.shardOf(id) },
    note: (msg, fields) => log.info(msg, fields),
  });
  const onShards = (ids: string[]) => [...new Set(ids.map((id) => subjects.shardOf(id)))].sort((a, b) => a - b).join(',');
  progress(
    `load running: ${load.devices.length} devices, ${load.conversations.length} conversations (shards ${onShards(load.conversations.map((c) => c.id))}; users on shards ${onShards([...load.tokens.keys()])})`,
  );

  const ctx: FaultContext = {
    nats,
    probe,
    replicas: 3,
    async restartPostgres() {
      await postgres!.stop();
      postgres = await startPostgres();
    },
    async gatewaysHealthy(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (const port of gatewayPorts) {
        while (
          (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
            (r) => r.status,
            () => 0,
          )) !== 200
        ) {
          if (Date.now() > deadline) throw new Error(`gateway on ${port} not healthy after ${timeoutMs} ms`);
          await sleep(200);
        }
      }
    },
  };
  const schedule: Fault[] = smoke
    ? [natsKill(3000), processKill(gw2, 'gateway gw2'), activeWorkerKill([wk1, wk2])]
    : [
        natsKill(6000),
        natsFreeze(8000),
        natsPartition(10_000),
        processKill(gw2, 'gateway gw2'),
        processKill(gw1, 'gateway gw1'),
        activeWorkerKill([wk1, wk2]),
        activeWorkerKill([wk1, wk2]),
        postgresRestart(),
      ];
  const settleMs = smoke ? 3000 : 5000;
  const outcomes: FaultOutcome[] = [];
  await sleep(settleMs);
  for (const fault of schedule) {
    // The whole run must stay under 10 minutes: what does not fit is left out, and said so.
    if (Date.now() - started > FAULT_PHASE_LIMIT_MS) {
      progress(`skipped (time): ${fault.name}`);
      skipped.push(fault.name);
      continue;
    }
    progress(`fault: ${fault.name}`);
    const o = await fault.run(ctx);
    await probe.waitCaughtUp(CAUGHT_UP_LAG, 60_000).then(
      () => (o.caughtUpAt = Date.now()),
      (err: Error) => progress(`  ${err.message}`),
    );
    outcomes.push(o);
    progress(
      `  ${o.target}: held ${secs(o.healedAt - o.injectedAt)}, recovered ${secs(o.recoveredAt - o.healedAt)} after healing, consumers caught up ${o.caughtUpAt ? secs(o.caughtUpAt - o.injectedAt) : 'never'} after the fault; acked so far ${ledger.acks.size}`,
    );
    await sleep(settleMs);
  }
  // Enough acked sends before stopping: keep the load on (bounded by maxSends and this deadline).
  const loadDeadline = Date.now() + (smoke ? 20_000 : 60_000);
  while (ledger.acks.size < MIN_ACKED && Date.now() < loadDeadline && load.issued() < (smoke ? 1500 : 6000)) await sleep(500);

  progress(`stopping the load (issued ${load.issued()}, acked ${ledger.acks.size})`);
  const { unacked } = await load.drain(60_000);
  if (unacked > 0) progress(`${unacked} sends still unacked after 60 s (not counted as acked)`);

  return verify(ledger, load, outcomes, namespace, gatewayPorts);
}

async function verify(ledger: Ledger, load: Load, outcomes: FaultOutcome[], namespace: string, gatewayPorts: number[]): Promise<number> {
  const base = `http://127.0.0.1:${gatewayPorts[1]}`;
  // The read model catches up after the last fault: wait until each conversation's history holds every acked send.
  const ackedByConv = new Map<string, string[]>();
  for (const a of ledger.acks.values()) ackedByConv.set(a.conversationId, [...(ackedByConv.get(a.conversationId) ?? []), `${a.sender}/${a.clientMsgId}`]);
  const history: StoredMessage[] = [];
  const deadline = Date.now() + 90_000;
  for (const c of load.conversations) {
    const token = load.tokens.get(c.members[0]!)!;
    for (;;) {
      const got = await fetchHistory(base, c.id, token).catch(() => null);
      const have = new Set(got?.map((m) => `${m.sender}/${m.clientMsgId}`));
      const complete = (ackedByConv.get(c.id) ?? []).every((k) => have.has(k));
      if (got && (complete || Date.now() > deadline)) {
        history.push(...got);
        break;
      }
      await sleep(500);
    }
  }
  progress(`history read: ${history.length} messages in ${load.conversations.length} conversations`);
  const stored = await probe!.messages(namespace);
  progress(`streams ${probe!.streams.join(', ')} read: ${stored.length} messages`);

  // Final resume of every device from its stored position.
  await Promise.all(load.devices.map((d) => d.finalResume(30_000).then((status) => ledger.finalResume(d.name, status))));
  const v = ledger.verdict(history, stored);
  const stats = ledger.deviceStats();
  const windows = faultWindows(outcomes, ledger.ackTimes);

  const lines = [
    'faults (unavailability per gateway: first ack after the fault, longest stretch without an ack while it lasted):',
    ...formatWindows(windows, started),
    `sends: issued ${load.issued()}, acked ${v.acked}, retried ${load.devices.reduce((n, d) => n + d.sendRetries, 0)} times, refused ${load.devices.reduce((n, d) => n + d.refused.length, 0)}`,
    `devices: ${load.devices.length}, resumes ${load.devices.reduce((n, d) => n + d.resumes, 0)}, events live ${stats.live}, replayed ${stats.replayed}, live gaps seen ${load.devices.reduce((n, d) => n + d.liveGaps, 0)}`,
    `final resumes complete: ${v.devicesChecked}/${load.devices.length}${v.devicesNotComplete.length ? ` (not: ${v.devicesNotComplete.join(', ')})` : ''}`,
    `processes exited unexpectedly (restarted): ${supervisor.unexpectedExits.length ? supervisor.unexpectedExits.map((e) => `${e.name} ${e.how} at +${((e.at - started) / 1000).toFixed(1)} s`).join(', ') : 'none'}`,
    ...v.details.map((d) => `  ${d}`),
    `duration ${((Date.now() - started) / 1000).toFixed(0)} s; logs in ${runDir}`,
  ];
  for (const l of lines) process.stdout.write(l + '\n');
  for (const d of load.devices.filter((x) => x.refused.length)) process.stdout.write(`  refused on ${d.name}: ${d.refused.slice(0, 3).join('; ')}\n`);
  const ok = v.lost === 0 && v.duplicated === 0 && v.misordered === 0 && v.acked >= MIN_ACKED && v.devicesNotComplete.length === 0 && skipped.length === 0;
  if (skipped.length) process.stdout.write(`faults not injected (out of time): ${skipped.join(', ')}\n`);
  if (v.acked < MIN_ACKED) process.stdout.write(`too few acked sends: ${v.acked} < ${MIN_ACKED}\n`);
  process.stdout.write(`chaos: acked=${v.acked} lost=${v.lost} duplicated=${v.duplicated} misordered=${v.misordered}\n`);
  return ok ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stdout.write(`chaos run failed: ${(err as Error).stack ?? String(err)}\nlogs in ${runDir}\n`);
  code = 1;
}
await cleanup();
await new Promise<void>((r) => logStream.end(() => r()));
if (code === 0 && !keep) fs.rmSync(runDir, { recursive: true, force: true });
process.exit(code);
