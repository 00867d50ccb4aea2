import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ParleyEvent } from '../contracts/index.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { TestClient } from './support/ws-client.js';

/**
 * Rules that depend on current state, raced from two gateways. Each gateway
 * has its own cached view of the conversation, so only the conditional
 * append (expected last subject sequence) can keep the rule.
 */
let gw1: TestPlatform;
let gw2: TestPlatform;
const clients: TestClient[] = [];
async function on(gw: TestPlatform, userId: string): Promise<TestClient> {
  const c = await TestClient.connect(gw.ws, await gw.token(userId));
  clients.push(c);
  return c;
}
async function log(conversationId: string): Promise<{ seq: number; event: ParleyEvent }[]> {
  const out = [];
  for await (const e of gw1.platform.runtime.store.readSubject(gw1.platform.runtime.subjects.conv(conversationId), 0)) out.push(e);
  return out;
}

beforeAll(async () => {
  gw1 = await startTestPlatform({ nodeId: 1, env: { RATE_SENDS_PER_SECOND: '1000', RATE_FRAMES_PER_SECOND: '1000' } });
  gw2 = await startTestPlatform({
    namespace: gw1.namespace,
    databaseUrl: gw1.databaseUrl,
    withWorkers: false,
    nodeId: 2,
    env: { RATE_SENDS_PER_SECOND: '1000', RATE_FRAMES_PER_SECOND: '1000' },
  });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await gw2?.stop();
  await gw1?.stop();
});

describe('races between gateways', () => {
  it('a removed member can never post after the removal', async () => {
    const admin = await on(gw1, 'race-admin');
    const victim = await on(gw2, 'race-victim');
    for (let round = 0; round < 15; round++) {
      const g = await admin.ok({ t: 'create', kind: 'group', title: `race ${round}`, members: ['race-victim'] });
      await victim.joined(g.conversationId);
      // Warm gateway 2's cache so its view is stale when the removal lands.
      await victim.send(g.conversationId, 'warm-up');
      const posts = Array.from({ length: 5 }, (_, i) =>
        victim.request({ t: 'send', conversationId: g.conversationId, clientMsgId: `r${round}-${i}`, text: `post ${i}` }),
      );
      const removal = admin.ok({ t: 'remove_member', conversationId: g.conversationId, userId: 'race-victim' });
      const [replies, removed] = await Promise.all([Promise.all(posts), removal]);
      const events = await log(g.conversationId);
      const removedAt = events.find((e) => e.event.type === 'member.removed')!.seq;
      expect(removedAt).toBe(removed.seq);
      const lateMessages = events.filter((e) => e.seq > removedAt && e.event.type === 'message.sent');
      expect(lateMessages).toEqual([]);
      for (const r of replies) {
        if (r.t === 'ack') expect(r.result.seq).toBeLessThan(removedAt);
        else expect(r.code).toBe('not_member');
      }
    }
  });

  it('two concurrent recalls of one message append one recall', async () => {
    const a1 = await on(gw1, 'recaller');
    const a2 = await on(gw2, 'recaller');
    const g = await a1.ok({ t: 'create', kind: 'direct', peer: 'someone' });
    for (let round = 0; round < 10; round++) {
      const m = await a1.send(g.conversationId, `recall me ${round}`);
      await a2.message(g.conversationId, `recall me ${round}`);
      // Both gateways know the message before racing.
      await a2.ok({ t: 'react', conversationId: g.conversationId, messageId: m.result.messageId, emoji: '👀' });
      const [r1, r2] = await Promise.all([
        a1.ok({ t: 'recall', conversationId: g.conversationId, messageId: m.result.messageId }),
        a2.ok({ t: 'recall', conversationId: g.conversationId, messageId: m.result.messageId }),
      ]);
      const recalls = (await log(g.conversationId)).filter((e) => e.event.type === 'message.recalled' && e.event.data.target.messageId === m.result.messageId);
      expect(recalls).toHaveLength(1);
      expect(new Set([r1.seq, r2.seq])).toEqual(new Set([recalls[0]!.seq]));
    }
  });

  it('an edit racing a recall never lands after it', async () => {
    const a1 = await on(gw1, 'editor');
    const a2 = await on(gw2, 'editor');
    const g = await a1.ok({ t: 'create', kind: 'direct', peer: 'reader' });
    for (let round = 0; round < 10; round++) {
      const m = await a1.send(g.conversationId, `edit or recall ${round}`);
      await a2.message(g.conversationId, `edit or recall ${round}`);
      await Promise.all([
        a2.request({ t: 'edit', conversationId: g.conversationId, messageId: m.result.messageId, text: 'edited' }),
        a1.request({ t: 'recall', conversationId: g.conversationId, messageId: m.result.messageId }),
      ]);
      const events = (await log(g.conversationId)).filter(
        (e) => 'target' in e.event.data && (e.event.data as { target: { messageId: string } }).target.messageId === m.result.messageId,
      );
      const recall = events.findIndex((e) => e.event.type === 'message.recalled');
      expect(recall).toBeGreaterThanOrEqual(0);
      expect(events.slice(recall + 1)).toEqual([]);
    }
  });

  it('logged no errors', () => {
    expect([...gw1.errorLogs, ...gw2.errorLogs]).toEqual([]);
  });
});
