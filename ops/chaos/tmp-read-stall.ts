import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { EventStore } from '../../services/shared/nats/event-store.js';
import { startChaosNats } from './nats-nodes.js';
import { startNatsCluster } from '../embedded/nats-cluster.js';
import { StreamProbe } from './stream-probe.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rs-'));
const log = { info() {}, warn() {}, error() {}, debug() {} };
const direct = process.argv[4] === 'direct';
const cl = direct ? await startNatsCluster({ binary: '/work/main/.parley/bin/nats-server', dataDir: dir, log, clientPorts: [0, 0, 0], routePorts: [0, 0, 0], detached: true }) : null;
const nats = direct
  ? { url: cl!.url, indexOf: (n: string) => cl!.nodes.findIndex((x) => x.name === n), freeze: (i: number) => process.kill(cl!.nodes[i]!.handle.pid, 'SIGSTOP'), thaw: (i: number) => process.kill(cl!.nodes[i]!.handle.pid, 'SIGCONT'), stop: () => cl!.stop(), kill() {}, restart: async () => {}, proxy: { isolate() {}, heal() {} } }
  : await startChaosNats({ binary: '/work/main/.parley/bin/nats-server', dataDir: dir, maxPayload: 1 << 20, log });
const t0 = Date.now();
const ts = () => ((Date.now() - t0) / 1000).toFixed(1);
try {
  const probe = await StreamProbe.open(nats.url, 'S');
  await probe.waitPlacement(3, 30000);
  const nc = await connect({ servers: nats.url.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 500, pingInterval: 10_000, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'S', subjects: ['s.>'], num_replicas: 3, allow_direct: true });
  const js = jetstream(nc);
  for (let i = 0; i < 100; i++) await js.publish(`s.${i % 4}`, JSON.stringify({ type: 'x', v: 1, at: 0, actor: 'a', data: {} }));
  const store = new EventStore(nc, js, jsm, 'S');
  const mode = process.argv[2] ?? 'freeze';
  let stop = false;
  const readers = [0, 1, 2, 3].map(async (k) => {
    while (!stop) {
      const s = Date.now();
      let n = 0;
      try {
        const done = process.argv[3] === 'fetch' ? store.readSubjects([`s.${k}`], 0, 1e9, 10000).then((r) => { n = r.events.length; }) : (async () => { for await (const _ of store.readSubjectEntries(`s.${k}`, 0)) n++; })();
        const r = await Promise.race([done.then(() => 'ok'), sleep(60000).then(() => 'hung 60s')]);
        const ms = Date.now() - s;
        if (ms > 1000 || r !== 'ok') console.log(ts(), `read s.${k}: ${r} ${n} entries in ${ms} ms`);
      } catch (e) {
        console.log(ts(), `read s.${k} failed after ${Date.now() - s} ms: ${String(e)}`);
      }
      await sleep(200);
    }
  });
  await sleep(2000);
  const leader = await probe.waitLeader(10000);
  const li = nats.indexOf(leader);
  console.log(ts(), mode, leader);
  if (mode === 'freeze') nats.freeze(li); else if (mode === 'kill') nats.kill(li); else nats.proxy.isolate(li);
  await sleep(8000);
  if (mode === 'freeze') nats.thaw(li); else if (mode === 'kill') await nats.restart(li); else nats.proxy.heal();
  console.log(ts(), 'healed');
  await sleep(50000);
  stop = true;
  await Promise.race([Promise.all(readers), sleep(65000)]);
  await nc.close(); await probe.close();
} finally {
  await nats.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
