import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { pickFreePort } from './free-port.js';
import type { EmbeddedLog } from './log.js';
import { startNatsServer, type NatsServerHandle, type NatsServerOptions } from './nats-server.js';

/**
 * A local nats-server cluster with JetStream on this machine (`npm run
 * cluster`, and tests of replicated streams): servers n1..nN, each with its
 * own store under `<dataDir>/<name>`, client ports 4222, 4223, 4224 and route
 * ports 6222, 6223, 6224 by default (0: free ports), all on 127.0.0.1,
 * cluster name `parley`. Resolves once JetStream has a meta leader, that is,
 * once streams can be created.
 */
export interface NatsClusterOptions {
  binary: string;
  dataDir: string;
  /** 3 by default; JetStream needs a majority of them up. */
  size?: number;
  /** Client ports, one per server: DEFAULT_CLIENT_PORTS when omitted; a 0 picks a free one. */
  clientPorts?: number[];
  /** Route (cluster) ports: DEFAULT_ROUTE_PORTS when omitted; a 0 picks a free one. */
  routePorts?: number[];
  name?: string;
  syncInterval?: string;
  maxPayload?: number;
  /** Clients and routes log in as this user (see NatsServerOptions.auth). */
  auth?: { user: string; password: string };
  log: EmbeddedLog;
  /** As for one server: own process groups, for a parent that handles signals itself. */
  detached?: boolean;
}

export interface NatsClusterNode {
  name: string;
  handle: NatsServerHandle;
  clientPort: number;
  routePort: number;
}

export interface NatsClusterHandle {
  /** Every server's client URL, comma-separated: what NATS_URL takes. */
  url: string;
  nodes: NatsClusterNode[];
  stop(): Promise<void>;
}

export const DEFAULT_CLIENT_PORTS = [4222, 4223, 4224];
/** Route ports sit this far above the client ports (4222 -> 6222, NATS's own convention). */
export const ROUTE_PORT_OFFSET = 2000;
export const DEFAULT_ROUTE_PORTS = DEFAULT_CLIENT_PORTS.map((p) => p + ROUTE_PORT_OFFSET);
const META_LEADER_TIMEOUT_MS = 30_000;
/** Per start of the servers: a healthy cluster places an R3 probe within a few seconds, even on a loaded machine. */
const QUORUM_ATTEMPT_MS = 25_000;
const CLUSTER_START_ATTEMPTS = 2;

export async function startNatsCluster(opts: NatsClusterOptions): Promise<NatsClusterHandle> {
  const size = opts.size ?? 3;
  const ports = async (given: number[]): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < size; i++) out.push(given[i] || (await pickFreePort()));
    return out;
  };
  // Routes name every server's route port up front, so each port is fixed before any server starts.
  const clientPorts = await ports(opts.clientPorts ?? DEFAULT_CLIENT_PORTS);
  const routePorts = await ports(opts.routePorts ?? DEFAULT_ROUTE_PORTS);
  // A route presents the cluster's credentials in its URL (nats-server's convention).
  const routeUserinfo = opts.auth ? `${encodeURIComponent(opts.auth.user)}:${encodeURIComponent(opts.auth.password)}@` : '';
  const nodeOptions = (i: number): NatsServerOptions => ({
    binary: opts.binary,
    dataDir: path.join(opts.dataDir, `n${i + 1}`),
    port: clientPorts[i]!,
    serverName: `n${i + 1}`,
    cluster: {
      name: opts.name ?? 'parley',
      port: routePorts[i]!,
      routes: routePorts.filter((_, j) => j !== i).map((p) => `nats-route://${routeUserinfo}127.0.0.1:${p}`),
    },
    ...(opts.auth ? { auth: opts.auth } : {}),
    log: opts.log,
    detached: opts.detached ?? false,
    ...(opts.syncInterval ? { syncInterval: opts.syncInterval } : {}),
    ...(opts.maxPayload ? { maxPayload: opts.maxPayload } : {}),
  });
  for (let attempt = 1; ; attempt++) {
    const nodes = await startNodes(size, nodeOptions);
    const url = nodes.map((n) => `nats://127.0.0.1:${n.clientPort}`).join(',');
    const stop = async () => {
      await Promise.all(nodes.map((n) => n.handle.stop()));
    };
    try {
      await waitForMetaLeader(url, opts.log, QUORUM_ATTEMPT_MS, opts.auth, nodes.length);
      opts.log.info('nats cluster ready', {
        url,
        nodes: nodes.map((n) => ({ name: n.name, pid: n.handle.pid, clientPort: n.clientPort, routePort: n.routePort })),
      });
      return { url, nodes, stop };
    } catch (err) {
      // What each server last said is the only clue to why a peer stayed out; the processes are gone after stop().
      const logs = Object.fromEntries(nodes.map((n) => [n.name, n.handle.recentLog().slice(-15)]));
      await stop();
      if (attempt >= CLUSTER_START_ATTEMPTS) {
        opts.log.error('nats cluster did not place a replica on every peer', { url, attempts: attempt, logs });
        throw err;
      }
      // Seen on a loaded CI machine only: all servers up, routes logged, yet one peer never offered for placement
      // for the whole wait. A stop and a fresh start of the same servers (same ports, same stores) has cleared it.
      opts.log.warn('nats cluster placed no replica on every peer; restarting its servers', { url, attempt, err: String(err), logs });
    }
  }
}

/** Starts the servers in parallel; each waits for its routes, and none reports ready before a route to another is possible. */
async function startNodes(size: number, nodeOptions: (i: number) => NatsServerOptions): Promise<NatsClusterNode[]> {
  const nodes: NatsClusterNode[] = [];
  const started = await Promise.allSettled(
    Array.from({ length: size }, (_, i) => {
      const options = nodeOptions(i);
      return startNatsServer(options).then((handle) =>
        nodes.push({ name: options.serverName!, handle, clientPort: handle.port, routePort: options.cluster!.port }),
      );
    }),
  );
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((n) => n.handle.stop()));
    throw failed.reason;
  }
  return nodes.sort((a, b) => a.name.localeCompare(b.name));
}

/** JetStream answers account info only once the cluster has elected its meta leader. */
export async function waitForMetaLeader(
  url: string,
  log: EmbeddedLog,
  timeoutMs = META_LEADER_TIMEOUT_MS,
  auth?: { user: string; password: string },
  /**
   * Also wait until a stream of this many replicas can be placed. A meta leader alone does not mean every
   * peer has reported in: an R3 stream or bucket created right then fails with "no suitable peers for placement".
   */
  placeReplicas = 1,
): Promise<void> {
  const nc = await connect({ servers: url.split(','), name: 'parley-cluster-probe', ...(auth ? { user: auth.user, pass: auth.password } : {}) });
  try {
    // checkAPI off: the manager's own probe would fail just like the wait it is for.
    const jsm = await jetstreamManager(nc, { timeout: 2000, checkAPI: false });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await jsm.getAccountInfo();
        if (placeReplicas > 1) {
          // A throwaway memory stream placed on that many peers, removed at once.
          const name = `PARLEY_PLACEMENT_PROBE_${process.pid}_${Date.now()}`;
          await jsm.streams.add({ name, subjects: [`_parley_probe.${name}`], num_replicas: placeReplicas, storage: StorageType.Memory });
          await jsm.streams.delete(name);
        }
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the NATS cluster at ${url} elected no JetStream meta leader within ${timeoutMs} ms: ${String(err)}`);
        log.debug('waiting for a JetStream meta leader', { err: String(err) });
        await sleep(200);
      }
    }
  } finally {
    await nc.close();
  }
}
