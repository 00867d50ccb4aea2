import path from 'node:path';
import { pickFreePort } from '../embedded/free-port.js';
import type { EmbeddedLog } from '../embedded/log.js';
import { waitForMetaLeader } from '../embedded/nats-cluster.js';
import { startNatsServer, type NatsServerHandle, type NatsServerOptions } from '../embedded/nats-server.js';
import { startRouteProxy, type RouteProxy } from './route-proxy.js';

/**
 * Three nats-servers with JetStream whose routes all pass through the
 * harness's route proxy (route-proxy.ts), so the harness can kill, freeze or
 * partition any one of them. Server i is named `n<i+1>`.
 */
export interface ChaosNats {
  /** Comma-separated client URLs of all servers (NATS_URL). */
  url: string;
  names: string[];
  proxy: RouteProxy;
  pid(i: number): number | null;
  /** kill -9: the store stays, as after a crash. */
  kill(i: number): void;
  /** Starts a killed server again on the same ports and store. */
  restart(i: number): Promise<void>;
  freeze(i: number): void;
  thaw(i: number): void;
  indexOf(name: string): number;
  stop(): Promise<void>;
}

export async function startChaosNats(opts: { binary: string; dataDir: string; maxPayload: number; log: EmbeddedLog; size?: number }): Promise<ChaosNats> {
  const size = opts.size ?? 3;
  const clientPorts: number[] = [];
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) {
    clientPorts.push(await pickFreePort());
    routePorts.push(await pickFreePort());
  }
  const proxy = await startRouteProxy(routePorts);
  const names = clientPorts.map((_, i) => `n${i + 1}`);
  const handles: (NatsServerHandle | null)[] = names.map(() => null);
  const frozen = new Set<number>();

  const options = (i: number): NatsServerOptions => ({
    binary: opts.binary,
    dataDir: path.join(opts.dataDir, names[i]!),
    port: clientPorts[i]!,
    serverName: names[i]!,
    maxPayload: opts.maxPayload,
    cluster: {
      name: 'parley-chaos',
      port: routePorts[i]!,
      routes: names.flatMap((_, j) => (j === i ? [] : [`nats-route://127.0.0.1:${proxy.portFor(i, j)}`])),
      advertise: `127.0.0.1:${proxy.refusePort}`,
    },
    log: opts.log,
    detached: true,
  });

  const start = async (i: number) => {
    handles[i] = await startNatsServer(options(i));
  };
  const stop = async () => {
    for (const i of frozen) thaw(i);
    await Promise.all(handles.map((h) => h?.stop()));
    await proxy.close();
  };
  const thaw = (i: number) => {
    const pid = handles[i]?.pid;
    frozen.delete(i);
    if (pid) signal(pid, 'SIGCONT');
  };
  try {
    await Promise.all(names.map((_, i) => start(i)));
    const url = clientPorts.map((p) => `nats://127.0.0.1:${p}`).join(',');
    await waitForMetaLeader(url, opts.log, 60_000);
    return {
      url,
      names,
      proxy,
      pid: (i) => handles[i]?.pid ?? null,
      kill(i) {
        const pid = handles[i]?.pid;
        if (pid) signal(pid, 'SIGKILL');
      },
      restart: start,
      freeze(i) {
        const pid = handles[i]?.pid;
        if (!pid) return;
        frozen.add(i);
        signal(pid, 'SIGSTOP');
      },
      thaw,
      indexOf: (name) => names.indexOf(name),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
