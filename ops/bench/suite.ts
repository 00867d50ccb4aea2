import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ensureNatsServer } from '../embedded/nats-binary.js';
import { startNatsCluster } from '../embedded/nats-cluster.js';
import { startNatsServer } from '../embedded/nats-server.js';
import { startEmbeddedPostgres } from '../embedded/postgres.js';
import { postmasterPid } from './lib/private-stack.js';
import { openFilesLimit, sampleProcesses, sampleTreeCpuUs } from './lib/proc.js';
import { LoadPool } from './load/pool.js';
import { commitInfo, machineInfo, type MachineInfo } from './machine.js';
import type { Scale } from './scales.js';
import { EXTERNAL_BENCHES, runExternal, type ExternalResult } from './scenarios/external.js';
import { runFanout, type FanoutResult } from './scenarios/fanout.js';
import { runIdle, type IdleResult } from './scenarios/idle.js';
import { runStorm, type StormResult, type StormSpec } from './scenarios/storm.js';
import { startParley } from './targets/parley.js';
import { startPeer } from './targets/peer.js';
import type { Target } from './targets/target.js';

export type SystemName = 'parley' | 'peer';
export type ScenarioName = 'fanout' | 'idle' | 'storm' | 'external' | 'scaleout';

/** One scale-out configuration of Parley: stream replicas (1: one nats-server; 3: a local 3-node cluster) and gateway processes. */
export interface ScaleoutResult {
  replicas: number;
  /** STREAM_SHARDS: streams the log is spread over (each with its own leader). */
  shards: number;
  gateways: number;
  natsServers: number;
  fanout: FanoutResult;
}

export interface SuiteOptions {
  scale: Scale;
  projectDir: string;
  systems?: SystemName[];
  scenarios?: ScenarioName[];
  /** Existing servers to use instead of starting NATS and Postgres (the smoke test shares the test run's). */
  natsUrl?: string;
  pgAdminUrl?: string;
  log?: (line: string) => void;
  /** Write a CPU profile of Parley's gateway for every send phase into this folder. */
  profileDir?: string;
}

export interface SystemResult {
  fanout: FanoutResult[];
  idle: IdleResult | null;
  storm: StormResult | null;
  /** Why a figure was measured at a different size than asked, and similar caveats. */
  notes: string[];
}

export interface SuiteResult {
  scale: string;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  loadAverageAtEnd: number[];
  commit: string;
  loadWorkers: number;
  parley: SystemResult;
  peer: SystemResult;
  /** Parley's storm at the brief's size (over several gateways when one process's open-files limit is too low). */
  parleyStormAtTarget: StormResult | null;
  external: ExternalResult[];
  /** `--only scaleout`: Parley at R1 and R3 with one and two gateways (empty otherwise). */
  scaleout: ScaleoutResult[];
}

/** Headroom for a server process's own descriptors (NATS, Postgres pool, chDB, listen socket, stdio). */
const FD_HEADROOM = 400;

/** Storm clients one server process can hold, writers included. */
function stormCapacity(spec: StormSpec, fdLimit: number): number {
  const perClient = 1 + 1 / (spec.groupSize * spec.groupsPerWriter);
  return Math.floor((fdLimit - FD_HEADROOM) / perClient / spec.groupSize) * spec.groupSize;
}

export async function runSuite(o: SuiteOptions): Promise<SuiteResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const systems = o.systems ?? ['parley', 'peer'];
  const scenarios = new Set<ScenarioName>(o.scenarios ?? o.scale.defaultScenarios ?? ['fanout', 'idle', 'storm', 'external']);
  const tag = randomBytes(3).toString('hex');
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const fdLimit = openFilesLimit();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-bench-'));
  fs.chmodSync(dir, 0o711); // under root, the embedded Postgres (user postgres) must traverse it
  if (o.profileDir) fs.mkdirSync(o.profileDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const result: SuiteResult = {
    scale: o.scale.name,
    startedAt,
    finishedAt: '',
    machine,
    loadAverageAtEnd: [],
    commit: commitInfo(o.projectDir),
    loadWorkers: o.scale.loadWorkers,
    parley: { fanout: [], idle: null, storm: null, notes: [] },
    peer: { fanout: [], idle: null, storm: null, notes: [] },
    parleyStormAtTarget: null,
    external: [],
    scaleout: [],
  };
  // Ctrl-C or SIGTERM: stop the servers this run started (children follow their IPC channel).
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping`);
    void Promise.allSettled([...stops].reverse().map((s) => s())).then(() => {
      fs.rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // Dependencies: the ones given, or a NATS and an embedded Postgres of our own (production settings).
    let natsUrl = o.natsUrl;
    const infra: { nats?: number; pgDir?: string } = {};
    let pgAdminUrl = o.pgAdminUrl;
    const needServers = scenarios.has('fanout') || scenarios.has('idle') || scenarios.has('storm') || scenarios.has('scaleout');
    if (needServers && !natsUrl) {
      const binary = await ensureNatsServer({ projectDir: o.projectDir, log: quietLog });
      const nats = await startNatsServer({ binary: binary.path, dataDir: path.join(dir, 'nats'), port: 0, maxPayload: 1 << 20, log: quietLog });
      stops.push(() => nats.stop());
      natsUrl = nats.url;
      infra.nats = nats.pid;
    }
    if (needServers && !pgAdminUrl) {
      const pgServer = await startEmbeddedPostgres({ dataDir: path.join(dir, 'postgres'), port: 0, extraFlags: ['-c', 'max_connections=200'], log: quietLog });
      stops.push(() => pgServer.stop());
      pgAdminUrl = pgServer.adminUrl;
      infra.pgDir = path.join(dir, 'postgres');
    }
    let dbCounter = 0;
    const newDatabase = async (prefix: string) => {
      const name = `bench_${prefix}_${tag}_${dbCounter++}`;
      const admin = new pg.Client({ connectionString: pgAdminUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end());
      const url = new URL(pgAdminUrl!);
      url.pathname = `/${name}`;
      return url.toString();
    };
    /** Every server process a system uses besides its own (the peer uses Postgres only), when this run started it. */
    const infraOf = (system: SystemName, natsPids: number[]): Record<string, () => number> => {
      const kinds: Record<string, () => number> = {};
      if (system === 'parley' && natsPids.length) kinds.nats = () => sampleProcesses(natsPids).cpuUs;
      const pgDir = infra.pgDir;
      // The postmaster's tree, exited backends included (their CPU moves to the postmaster's children time).
      if (pgDir) kinds.postgres = () => sampleTreeCpuUs(postmasterPid(pgDir));
      return kinds;
    };
    const start = async (
      system: SystemName,
      gateways = 1,
      nats: { url: string; pids: number[]; env?: Record<string, string> } = { url: natsUrl!, pids: infra.nats ? [infra.nats] : [] },
    ): Promise<{ target: Target; pool: LoadPool; stop(): Promise<void> }> => {
      const n = dbCounter;
      const target =
        system === 'parley'
          ? await startParley({
              natsUrl: nats.url,
              databaseUrl: await newDatabase('parley'),
              namespace: `b${tag}${n}`,
              dataDir: path.join(dir, `parley-${n}`),
              gateways,
              stableMs: Math.min(1000, o.scale.settleMs),
              ...(nats.env ? { env: nats.env } : {}),
            })
          : await startPeer({ databaseUrl: await newDatabase('peer') });
      target.infra = infraOf(system, nats.pids);
      const pool = await LoadPool.start(o.scale.loadWorkers, system, target.urls);
      return {
        target,
        pool,
        async stop() {
          await pool.stop();
          await target.stop();
        },
      };
    };

    const runExternals = async () => {
      const out: ExternalResult[] = [];
      if (scenarios.has('external')) for (const bench of EXTERNAL_BENCHES) out.push(await runExternal(bench, o.scale.external === 'smoke', {}, log));
      return out;
    };
    // Smoke figures mean nothing, so the separate scripts run alongside; in a full run they come last, alone.
    const externals = o.scale.name === 'full' ? null : runExternals();
    externals?.catch(() => undefined);

    for (const system of systems) {
      const r = result[system];
      let current: Awaited<ReturnType<typeof start>> | null = null;
      const fresh = async (gateways = 1) => {
        if (current && !o.scale.freshTargets && gateways === current.target.urls.length) return current;
        await current?.stop();
        current = null;
        current = await start(system, gateways);
        return current;
      };
      try {
        if (scenarios.has('fanout')) {
          log(`${system}: send -> store -> deliver`);
          const { target, pool } = await fresh();
          for (const f of o.scale.fanout) r.fanout.push(await runFanout(target, pool, f.spec, f.phases, tag, log, o.profileDir));
        }
        if (scenarios.has('idle')) {
          log(`${system}: idle connections`);
          const n = Math.min(o.scale.idleConnections, fdLimit - FD_HEADROOM);
          if (n < o.scale.idleConnections)
            r.notes.push(`idle: ${n} connections instead of ${o.scale.idleConnections}: one process may open ${fdLimit} files here`);
          const { target, pool } = await fresh();
          r.idle = await runIdle(target, pool, n, tag, log, o.scale.settleMs);
        }
        if (scenarios.has('storm')) {
          log(`${system}: reconnect storm`);
          const cap = stormCapacity(o.scale.storm, fdLimit);
          const clients = Math.min(o.scale.storm.clients, cap);
          if (clients < o.scale.storm.clients)
            r.notes.push(`storm: ${clients} clients instead of ${o.scale.storm.clients}: one process may open ${fdLimit} files here`);
          const { target, pool } = await fresh();
          r.storm = await runStorm(target, pool, { ...o.scale.storm, clients }, `${tag}s`, log, o.profileDir);
          if (system === 'parley' && o.scale.stormTargetClients) {
            const want = o.scale.stormTargetClients;
            const gateways = Math.ceil(want / cap);
            log(`parley: reconnect storm at ${want} clients over ${gateways} gateway process(es)`);
            const big = await fresh(gateways);
            result.parleyStormAtTarget = await runStorm(big.target, big.pool, { ...o.scale.storm, clients: want }, `${tag}t`, log, o.profileDir);
          }
        }
      } finally {
        await (current as { stop(): Promise<void> } | null)?.stop();
      }
    }
    if (scenarios.has('scaleout')) result.scaleout = await runScaleout(o, dir, start, log);
    result.external = await (externals ?? runExternals());
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const stop of stops.reverse()) await stop().catch((err) => log(`stopping a dependency failed: ${String(err)}`));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  result.finishedAt = new Date().toISOString();
  result.loadAverageAtEnd = os.loadavg();
  return result;
}

type StartTarget = (
  system: SystemName,
  gateways: number,
  nats: { url: string; pids: number[]; env?: Record<string, string> },
) => Promise<{ target: Target; pool: LoadPool; stop(): Promise<void> }>;

/**
 * Scale-out (issue 15): the same groups-of-10 load against Parley with one
 * nats-server (R1) and a local 3-node cluster with STREAM_REPLICAS=3, each
 * with one and two gateway processes (clients spread over them), and on the
 * cluster two gateways over a log of three stream shards (a leader each,
 * which NATS spreads over the nodes), a fresh deployment and database each.
 * Every server process's CPU is counted: gateways, the workers process,
 * every nats-server, Postgres.
 */
async function runScaleout(o: SuiteOptions, dir: string, start: StartTarget, log: (line: string) => void): Promise<ScaleoutResult[]> {
  const out: ScaleoutResult[] = [];
  const binary = await ensureNatsServer({ projectDir: o.projectDir, log: quietLog });
  for (const replicas of [1, 3]) {
    let nats: { url: string; pids: number[]; stop(): Promise<void> };
    if (replicas === 1) {
      const one = await startNatsServer({ binary: binary.path, dataDir: path.join(dir, 'scaleout-r1'), port: 0, maxPayload: 1 << 20, log: quietLog });
      nats = { url: one.url, pids: [one.pid], stop: () => one.stop() };
    } else {
      // Free ports are picked before the servers bind them: on a busy machine another process may take one
      // first and the cluster never forms; a second attempt picks new ones.
      const startCluster = (attempt: number) =>
        startNatsCluster({
          binary: binary.path,
          dataDir: path.join(dir, `scaleout-r3-${attempt}`),
          size: 3,
          clientPorts: [0, 0, 0],
          routePorts: [0, 0, 0],
          maxPayload: 1 << 20,
          log: quietLog,
        });
      const cluster = await startCluster(1).catch((err: unknown) => {
        log(`  the 3-node cluster did not form (${String(err)}); once more on new ports`);
        return startCluster(2);
      });
      nats = { url: cluster.url, pids: cluster.nodes.map((n) => n.handle.pid), stop: () => cluster.stop() };
    }
    try {
      const configurations =
        replicas === 1
          ? [
              { gateways: 1, shards: 1 },
              { gateways: 2, shards: 1 },
            ]
          : [
              { gateways: 1, shards: 1 },
              { gateways: 2, shards: 1 },
              { gateways: 2, shards: 3 },
            ];
      for (const { gateways, shards } of configurations) {
        log(`parley scale-out: R${replicas} on ${nats.pids.length} nats-server(s), ${gateways} gateway(s), ${shards} stream shard(s)`);
        // Each configuration is a fresh deployment (namespace and database of its own): a shard count is fixed per deployment.
        const env = { STREAM_REPLICAS: String(replicas), STREAM_SHARDS: String(shards) };
        const s = await start('parley', gateways, { url: nats.url, pids: nats.pids, env });
        try {
          const fanout = await runFanout(s.target, s.pool, o.scale.scaleout.spec, o.scale.scaleout.phases, `so${replicas}${gateways}${shards}`, log);
          out.push({ replicas, shards, gateways, natsServers: nats.pids.length, fanout });
        } finally {
          await s.stop();
        }
      }
    } finally {
      await nats.stop();
    }
  }
  return out;
}

/** The embedded servers' own logs stay out of the benchmark output unless they fail. */
const quietLog = {
  debug: () => undefined,
  info: () => undefined,
  warn: (msg: string, f?: Record<string, unknown>) => process.stderr.write(`[bench deps] ${msg} ${f ? JSON.stringify(f) : ''}\n`),
  error: (msg: string, f?: Record<string, unknown>) => process.stderr.write(`[bench deps] ${msg} ${f ? JSON.stringify(f) : ''}\n`),
  child: () => quietLog,
};
