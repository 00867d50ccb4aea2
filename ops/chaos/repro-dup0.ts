import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, headers } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startChaosNats } from './nats-nodes.js';
import { StreamProbe } from './stream-probe.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'd0-'));
const log = { info() {}, warn() {}, error() {}, debug() {} };
const nats = await startChaosNats({ binary: '/work/main/.parley/bin/nats-server', dataDir: dir, maxPayload: 1 << 20, log });
try {
  const probe = await StreamProbe.open(nats.url, 'S');
  await probe.waitPlacement(3, 30000);
  const urls = nats.url.split(',');
  const nc0 = await connect({ servers: urls });
  await (await jetstreamManager(nc0)).streams.add({ name: 'S', subjects: ['s.>'], num_replicas: 3, allow_direct: true, duplicate_window: 120e9 });
  const leader = await probe.waitLeader(10000);
  const li = nats.indexOf(leader);
  const nc = await connect({ servers: urls[li]! });
  const pub = async (label: string, msgId: string | null = 'X') => {
    const h = headers();
    if (msgId) h.set('Nats-Msg-Id', msgId);
    h.set('Nats-Expected-Last-Subject-Sequence', '0');
    const r = await nc.request('s.a', 'hello', { headers: h, timeout: 2000 }).then((m) => new TextDecoder().decode(m.data), (e) => `error ${String(e)}`);
    console.log(label, r);
  };
  nats.proxy.isolate(li);
  await pub('first (leader isolated)');
  await pub('retry 1');
  await pub('re-append without id', null);
  nats.proxy.heal();
  await probe.waitCurrent(3, 30000);
  console.log('healed; leader', await probe.leader());
  for (let i = 0; i < 3; i++) {
    await pub(`retry after heal ${i}`);
    await sleep(1000);
  }
  const info = await (await jetstreamManager(nc0)).streams.info('S');
  console.log('stream messages', info.state.messages, 'last', info.state.last_seq);
  await nc.close();
  await nc0.close();
  await probe.close();
} finally {
  await nats.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
