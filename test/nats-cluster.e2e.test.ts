import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { subjectsFor } from '../contracts/index.js';
import { startNatsCluster, type NatsClusterHandle } from '../ops/embedded/nats-cluster.js';
import { createLogger } from '../services/observability/logger.js';
import { connectNats, type NatsHandles } from '../services/event-log/connection.js';
import { NatsSetupRefused } from '../services/event-log/refusal.js';
import { ensureEventStreams } from '../services/event-log/streams.js';
import { startTestPlatform, uniqueNamespace, type TestPlatform } from './support/platform.js';
import { createTestLog } from './support/test-log.js';
import { api, TestClient } from './support/ws-client.js';

/**
 * A real 3-node nats-server cluster on free loopback ports
 * (ops/embedded/nats-cluster.ts): the event stream created with
 * STREAM_REPLICAS=3 keeps every acknowledged event through a kill -9 of its
 * leader, and two gateways on the cluster deliver each other's messages live.
 */
const quiet = createLogger({ level: 'silent' });
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-cluster-test-'));
let cluster: NatsClusterHandle;
let nats: NatsHandles;

beforeAll(async () => {
  cluster = await startNatsCluster({
    binary: inject('natsBinary'),
    dataDir,
    clientPorts: [0, 0, 0],
    routePorts: [0, 0, 0],
    // A name of its own: a server of another cluster (another file, or the node killed below) redialling a route
    // port that a free-port pick handed to this one must be refused, not merged into this cluster.
    name: `t${randomBytes(4).toString('hex')}`,
    log: createTestLog('nats-cluster'),
  });
  nats = await connectNats(cluster.url, 'cluster-test', quiet);
}, 60_000);

afterAll(async () => {
  await nats?.nc.close();
  await cluster?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const settings = { maxAgeDays: 1, duplicateWindowSeconds: 120, maxMsgBytes: 1 << 16 };

describe('STREAM_REPLICAS', () => {
  it('is refused with one line on a single nats-server', async () => {
    const single = await connectNats(inject('natsUrl'), 'single', quiet);
    try {
      const refused = await ensureEventStreams(single.jsm, subjectsFor(uniqueNamespace('r')), { ...settings, replicas: 3 }, quiet).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(NatsSetupRefused);
      expect((refused as Error).message).toMatch(/^STREAM_REPLICAS=3 cannot be applied to \S+: .*need a JetStream cluster of at least 3 servers/);
    } finally {
      await single.nc.close();
    }
  });

  it('scales an existing R1 event stream to R3 in place, keeping its epoch', async () => {
    const subjects = subjectsFor(uniqueNamespace('r'));
    const [r1] = await ensureEventStreams(nats.jsm, subjects, { ...settings, replicas: 1 }, quiet);
    await nats.js.publish(`${subjects.namespace}.ev.conv.c1`, 'before');
    const [r3] = await ensureEventStreams(nats.jsm, subjects, { ...settings, replicas: 3 }, quiet);
    expect(r3!.epoch).toBe(r1!.epoch);
    const info = await nats.jsm.streams.info(r3!.stream);
    expect(info.config.num_replicas).toBe(3);
    expect(info.state.messages).toBe(1);
  });

  it('keeps every acknowledged event of an R3 stream through a kill -9 of its leader', async () => {
    const subjects = subjectsFor(uniqueNamespace('r'));
    const [shard] = await ensureEventStreams(nats.jsm, subjects, { ...settings, replicas: 3 }, quiet);
    const stream = shard!.stream;
    const acked = new Map<number, string>();
    // Retried with the same message id until acknowledged: JetStream's dedup keeps a retried append single.
    const append = async (body: string) => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          const ack = await nats.js.publish(`${subjects.namespace}.ev.conv.c1`, body, { msgID: body, timeout: 2000 });
          acked.set(ack.seq, body);
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await sleep(100);
        }
      }
    };
    for (let i = 0; i < 100; i++) await append(`before-${i}`);
    const info = await nats.jsm.streams.info(stream);
    expect(info.config.num_replicas).toBe(3);
    expect(info.cluster?.replicas?.length).toBe(2);
    const leader = cluster.nodes.find((n) => n.name === info.cluster?.leader);
    expect(leader).toBeDefined();
    process.kill(leader!.handle.pid, 'SIGKILL');

    for (let i = 0; i < 100; i++) await append(`after-${i}`);
    const after = await nats.jsm.streams.info(stream);
    expect(after.cluster?.leader).not.toBe(leader!.name);
    expect(acked.size).toBe(200);
    for (const [seq, body] of acked) {
      const msg = await nats.jsm.streams.getMessage(stream, { seq });
      expect(msg?.string()).toBe(body);
    }
    expect(after.state.messages).toBe(200);
  }, 60_000);
});

describe('two gateways on the cluster', () => {
  let gw1: TestPlatform;
  let gw2: TestPlatform;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    // A fresh cluster: the previous test killed one node of the shared one.
    await nats.nc.close();
    await cluster.stop();
    cluster = await startNatsCluster({
      binary: inject('natsBinary'),
      dataDir: path.join(dataDir, 'second'),
      clientPorts: [0, 0, 0],
      routePorts: [0, 0, 0],
      name: `t${randomBytes(4).toString('hex')}`,
      log: createTestLog('nats-cluster'),
    });
    nats = await connectNats(cluster.url, 'cluster-test', quiet);
    const env = { STREAM_REPLICAS: '3' };
    gw1 = await startTestPlatform({ natsUrl: cluster.url, env });
    gw2 = await startTestPlatform({ natsUrl: cluster.url, namespace: gw1.namespace, databaseUrl: gw1.databaseUrl, withWorkers: false, nodeId: 2, env });
  }, 90_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await gw2?.stop();
    await gw1?.stop();
  });

  it("replicates every stream and bucket, and each gateway sees the other one's messages live", async () => {
    for (const name of await nats.jsm.streams.names().next()) {
      if (name.includes(gw1.namespace)) expect([name, (await nats.jsm.streams.info(name)).config.num_replicas]).toEqual([name, 3]);
    }
    const alice = await TestClient.connect(gw1.ws, await gw1.token('alice'));
    const bob = await TestClient.connect(gw2.ws, await gw2.token('bob'));
    clients.push(alice, bob);
    const conv = (await api(gw1.http, 'POST', '/v1/conversations', await gw1.token('alice'), { kind: 'direct', peer: 'bob' })).body;
    const id = conv.conversationId as string;
    await Promise.all([alice.joined(id), bob.joined(id)]);
    const fromAlice = await alice.send(id, 'from gateway 1');
    expect((await bob.message(id, 'from gateway 1')).seq).toBe(fromAlice.result.seq);
    const fromBob = await bob.send(id, 'from gateway 2');
    expect((await alice.message(id, 'from gateway 2')).seq).toBe(fromBob.result.seq);
  }, 60_000);
});
