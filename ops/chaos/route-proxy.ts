import net from 'node:net';

/**
 * The NATS cluster's routes, through this process: every ordered pair of
 * servers (from -> to) gets its own listening port forwarding to `to`'s real
 * route port, and `from` names only those ports in its `routes`. Since each
 * port carries one pair's traffic, cutting a server off is closing every
 * connection on the ports that name it and refusing new ones until healed:
 * a network partition without network namespaces.
 *
 * Servers also gossip each other's route address when a route forms; each
 * server advertises a port here that refuses every connection (`refusePort`),
 * so a gossiped address can never open a route that bypasses the proxy (the
 * configured routes already form the full mesh).
 */
export interface RouteProxy {
  /** The port server `from` dials to reach server `to`. */
  portFor(from: number, to: number): number;
  /** The address every server advertises: it accepts and drops, so no route can form around the proxy. */
  refusePort: number;
  /** Cuts server `node` off from all others (open routes are destroyed, new ones refused). */
  isolate(node: number): void;
  heal(): void;
  isolated(): number | null;
  close(): Promise<void>;
}

interface Pair {
  from: number;
  to: number;
  server: net.Server;
  port: number;
  sockets: Set<net.Socket>;
}

export async function startRouteProxy(realRoutePorts: number[]): Promise<RouteProxy> {
  const pairs: Pair[] = [];
  let cut: number | null = null;
  const involves = (p: Pair, node: number) => p.from === node || p.to === node;

  const listen = (server: net.Server) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });

  for (let from = 0; from < realRoutePorts.length; from++) {
    for (let to = 0; to < realRoutePorts.length; to++) {
      if (from === to) continue;
      const pair: Pair = { from, to, server: net.createServer(), port: 0, sockets: new Set() };
      pair.server.on('connection', (inbound) => {
        if (cut !== null && involves(pair, cut)) return void inbound.destroy();
        const outbound = net.connect({ host: '127.0.0.1', port: realRoutePorts[to]! });
        for (const s of [inbound, outbound]) {
          s.setNoDelay(true);
          pair.sockets.add(s);
          // Either side ending ends both: a half-open route would look alive to one server.
          s.once('close', () => {
            pair.sockets.delete(s);
            inbound.destroy();
            outbound.destroy();
          });
          s.on('error', () => undefined);
        }
        inbound.pipe(outbound);
        outbound.pipe(inbound);
      });
      pair.port = await listen(pair.server);
      pairs.push(pair);
    }
  }
  const refuser = net.createServer((s) => s.destroy());
  const refusePort = await listen(refuser);

  return {
    portFor(from, to) {
      const p = pairs.find((x) => x.from === from && x.to === to);
      if (!p) throw new Error(`no route proxy for ${from} -> ${to}`);
      return p.port;
    },
    refusePort,
    isolate(node) {
      cut = node;
      for (const p of pairs) if (involves(p, node)) for (const s of p.sockets) s.destroy();
    },
    heal() {
      cut = null;
    },
    isolated: () => cut,
    async close() {
      for (const p of pairs) for (const s of p.sockets) s.destroy();
      await Promise.all([...pairs.map((p) => p.server), refuser].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
