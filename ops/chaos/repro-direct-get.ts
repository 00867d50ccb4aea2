import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startChaosNats } from './nats-nodes.js';
import { StreamProbe } from './stream-probe.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dg-'));
const log = { info() {}, warn() {}, error() {}, debug() {} };
const nats = await startChaosNats({ binary: '/work/main/.parley/bin/nats-server', dataDir: dir, maxPayload: 1 << 20, log });
try {
  const probe = await StreamProbe.open(nats.url, 'S');
  await probe.waitPlacement(3, 30000);
  const urls = nats.url.split(',');
  const nc0 = await connect({ servers: urls });
  const jsm0 = await jetstreamManager(nc0);
  await jsm0.streams.add({ name: 'S', subjects: ['s.>'], num_replicas: 3, allow_direct: true });
  const js0 = jetstream(nc0);
  for (let i = 0; i < 200; i++) await js0.publish(`s.${i % 5}`, `m${i}`);
  const leader = await probe.waitLeader(10000);
  const li = nats.indexOf(leader);
  console.log('leader', leader);
  const mode = process.argv[2] ?? 'freeze';
  if (mode === 'kill') nats.kill(li);
  else if (mode === 'partition') nats.proxy.isolate(li);
  else nats.freeze(li);
  const other = urls.filter((_, i) => i !== li);
  const ncp = await connect({ servers: other });
  const jsp = jetstream(ncp);
  const t = Date.now();
  let okp = 0;
  while (Date.now() - t < 8000) await jsp.publish(`s.${okp % 5}`, `k${okp}`, { timeout: 1000 }).then(() => okp++, () => sleep(100));
  console.log('published during fault', okp);
  if (mode === 'kill') await nats.restart(li);
  else if (mode === 'partition') nats.proxy.heal();
  else nats.thaw(li);
  await ncp.close();
  await probe.waitCurrent(3, 60000);
  console.log('current; new leader', await probe.leader());
  for (let round = 0; round < 5; round++) {
    for (let s = 0; s < urls.length; s++) {
      const nc = await connect({ servers: urls[s]! });
      const jsm = await jetstreamManager(nc);
      const results: Record<string, number> = {};
      for (let seq = 1; seq <= 200 + okp; seq += 7) {
        try {
          const m = await jsm.direct.getMessage('S', { seq });
          results[m ? 'ok' : 'null'] = (results[m ? 'ok' : 'null'] ?? 0) + 1;
        } catch (e) {
          const k = String((e as Error).message);
          results[k] = (results[k] ?? 0) + 1;
        }
      }
      console.log(`round ${round} via n${s + 1}`, JSON.stringify(results));
      await nc.close();
    }
    await sleep(2000);
  }
  await nc0.close();
  await probe.close();
} finally {
  await nats.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
