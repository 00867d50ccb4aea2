import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { api, TestClient } from './support/ws-client.js';

let gw1: TestPlatform;
let gw2: TestPlatform;
const clients: TestClient[] = [];

async function on(gw: TestPlatform, userId: string): Promise<TestClient> {
  const c = await TestClient.connect(gw.ws, await gw.token(userId));
  clients.push(c);
  return c;
}

beforeAll(async () => {
  gw1 = await startTestPlatform({ nodeId: 1 });
  // A second gateway of the same deployment: same log, same read model, no workers of its own.
  gw2 = await startTestPlatform({ namespace: gw1.namespace, databaseUrl: gw1.databaseUrl, withWorkers: false, nodeId: 2 });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await gw2?.stop();
  await gw1?.stop();
});

describe('live delivery across gateways', () => {
  it('reaches every member connection on every gateway with one log write and one NATS subscription per gateway', async () => {
    const members = ['u1', 'u2', 'u3', 'u4', 'u5'];
    // u1 has two devices on gateway 1; u2 on gateway 1; u3..u5 on gateway 2.
    const onGw1 = [await on(gw1, 'u1'), await on(gw1, 'u1'), await on(gw1, 'u2')];
    const onGw2 = [await on(gw2, 'u3'), await on(gw2, 'u4'), await on(gw2, 'u5')];
    const created = await api(gw1.http, 'POST', '/v1/conversations', await gw1.token('u1'), { kind: 'group', title: 'fan-out', members });
    const id = created.body.conversationId as string;
    await Promise.all([...onGw1, ...onGw2].map((c) => c.joined(id)));

    const topic = `conv/${id}`;
    expect(gw1.platform.gateway.hub.refs(topic)).toBe(3);
    expect(gw2.platform.gateway.hub.refs(topic)).toBe(3);

    const { store } = gw1.platform.runtime;
    const before = await store.lastSubjectSeq(gw1.platform.runtime.subjects.conv(id));
    const ack = await onGw2[0]!.send(id, 'one write, six sockets');
    expect(ack.t).toBe('ack');
    const frames = await Promise.all([...onGw1, ...onGw2].map((c) => c.message(id, 'one write, six sockets')));
    expect(new Set(frames.map((f) => f.seq))).toEqual(new Set([ack.result.seq]));
    // Exactly one event was appended for the message: the previous event on the subject is the one before it.
    expect(frames[0]!.prevSeq).toBe(before);

    // Closing gateway 1's connections drops its interest, and with the last one, its NATS subscription.
    const subsBefore = gw1.platform.gateway.hub.size;
    await onGw1[0]!.close();
    await waitUntil(() => gw1.platform.gateway.hub.refs(topic) === 2);
    await onGw1[1]!.close();
    await onGw1[2]!.close();
    await waitUntil(() => gw1.platform.gateway.hub.refs(topic) === 0);
    expect(gw1.platform.gateway.hub.size).toBeLessThan(subsBefore);
    // Gateway 2 keeps delivering.
    await onGw2[1]!.send(id, 'still here');
    await Promise.all(onGw2.map((c) => c.message(id, 'still here')));
  });

  it('a device that connects later is subscribed to the conversations it is already in', async () => {
    const first = await on(gw1, 'v1');
    const created = await api(gw1.http, 'POST', '/v1/conversations', await gw1.token('v1'), { kind: 'direct', peer: 'v2' });
    await first.joined(created.body.conversationId);
    // Wait until the read model knows the membership, then connect v2 on the other gateway.
    await api(gw1.http, 'GET', `/v1/conversations?after=${created.body.seq}`, await gw1.token('v2'));
    const late = await on(gw2, 'v2');
    await waitUntil(() => gw2.platform.gateway.hub.refs(`conv/${created.body.conversationId}`) === 1);
    await first.send(created.body.conversationId, 'hello late device');
    await late.message(created.body.conversationId, 'hello late device');
  });

  it('logged no errors', () => {
    expect([...gw1.errorLogs, ...gw2.errorLogs]).toEqual([]);
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
