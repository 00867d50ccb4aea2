import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WrongLastSequence, type AppendOptions } from '../services/event-log/event-store.js';
import type { EventLog } from '../services/event-log/event-log.js';
import type { ParleyEvent } from '../contracts/index.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { TestClient, type Frame } from './support/ws-client.js';
import { commandsOn } from './support/write-side.js';

/**
 * Issue 15: any number of gateways may serve one conversation. Two gateways
 * append to the same group at once, each conditional on the subject's last
 * sequence as it knows it; the one that loses a race catches up and goes
 * again. A user must never get `conflict` for that, and the log must hold
 * every message once, in one order that every member sees.
 */
const SENDERS = 20;
const SENDS_EACH = 50;
const IN_FLIGHT = 3;
const rates = { RATE_SENDS_PER_SECOND: '10000', RATE_FRAMES_PER_SECOND: '10000' };

let gw1: TestPlatform;
let gw2: TestPlatform;
const clients: TestClient[] = [];

beforeAll(async () => {
  gw1 = await startTestPlatform({ nodeId: 1, env: rates });
  gw2 = await startTestPlatform({ namespace: gw1.namespace, databaseUrl: gw1.databaseUrl, withWorkers: false, nodeId: 2, env: rates });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await gw2?.stop();
  await gw1?.stop();
});

/** Sends `SENDS_EACH` messages, `IN_FLIGHT` at a time, and returns every reply (ack or error frame). */
async function sendAll(client: TestClient, sender: string, conversationId: string): Promise<Frame[]> {
  const replies: Frame[] = [];
  let next = 0;
  const lane = async () => {
    while (next < SENDS_EACH) {
      const i = next++;
      // Generous: a reply is late only on a starved machine; the assertion is about its kind, not its time.
      replies.push(await client.request({ t: 'send', conversationId, clientMsgId: `${sender}-${i}`, text: `${sender} ${i}` }, 30_000));
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return replies;
}

describe('two gateways writing one conversation', () => {
  it('acks every send (never `conflict`), stores each message once, and every member sees one order', async () => {
    const senders = Array.from({ length: SENDERS }, (_, i) => `tgw-${i}`);
    // Half the members on each gateway, alternating, so both gateways append all the time; connected
    // before the group exists, so each sees its membership (and every message) live.
    const members: TestClient[] = [];
    for (const [i, userId] of senders.entries()) {
      const gw = i % 2 === 0 ? gw1 : gw2;
      const c = await TestClient.connect(gw.ws, await gw.token(userId));
      clients.push(c);
      members.push(c);
    }
    const group = await members[0]!.ok({ t: 'create', kind: 'group', title: 'two gateways', members: senders.slice(1) });
    const id = group.conversationId as string;
    await Promise.all(members.map((c) => c.joined(id, 20_000)));

    const replies = await Promise.all(members.map((c, i) => sendAll(c, senders[i]!, id)));

    const refused = replies.flat().filter((r) => r.t !== 'ack');
    expect(refused.map((r) => `${r.code}: ${r.message}`)).toEqual([]);

    // The log holds each message exactly once, at the sequence its ack named.
    const stored = [];
    for await (const e of gw1.platform.runtime.store.readSubject(gw1.platform.runtime.subjects.conv(id), 0))
      if (e.event.type === 'message.sent') stored.push({ seq: e.seq, key: `${e.event.actor}/${e.event.data.clientMsgId}` });
    expect(stored).toHaveLength(SENDERS * SENDS_EACH);
    expect(new Set(stored.map((s) => s.key)).size).toBe(SENDERS * SENDS_EACH);
    const seqByKey = new Map(stored.map((s) => [s.key, s.seq]));
    for (const [i, rs] of replies.entries())
      for (const r of rs) expect([r.result.clientMsgId, r.result.seq]).toEqual([r.result.clientMsgId, seqByKey.get(`${senders[i]}/${r.result.clientMsgId}`)]);

    // Each sender's messages are stored in the order it sent them (pipelined sends keep their order).
    for (const sender of senders) {
      const mine = stored.filter((s) => s.key.startsWith(`${sender}/`)).map((s) => Number(s.key.split('-').at(-1)));
      expect(mine).toEqual(Array.from({ length: SENDS_EACH }, (_, i) => i));
    }

    // Every member receives every message live, once, in the log's order.
    const order = stored.map((s) => s.seq);
    const last = order.at(-1)!;
    await Promise.all(members.map((c) => c.next((f) => f.t === 'event' && f.seq === last, 30_000)));
    for (const c of members) {
      const seen = c.frames.filter((f) => f.t === 'event' && f.event.type === 'message.sent' && f.event.data.conversationId === id).map((f) => f.seq as number);
      expect(seen).toEqual(order);
    }
  }, 120_000);
});

/**
 * gw1's store, except that before the appends of the loser's message `rival` appends first (so
 * the append loses its race): `rivalAppends[i]` events before attempt i+1.
 */
function storeLosingRaces(real: EventLog, rivalAppends: number[], rival: (n: number) => Promise<void>) {
  let attempt = 0;
  const store = new Proxy(real, {
    get(target, prop) {
      if (prop === 'append')
        return async (subject: string, event: ParleyEvent, options: AppendOptions = {}) => {
          const n = event.type === 'message.sent' && event.actor === 'loser' ? rivalAppends[attempt++] : undefined;
          if (n) await rival(n);
          return target.append(subject, event, options);
        };
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, attempts: () => attempt };
}

describe('a send that keeps losing races to another gateway', () => {
  async function race(rivalAppends: number[], contentionBudgetMs?: number) {
    const other = commandsOn(gw2, gw2.platform.runtime.store);
    let sent = 0;
    const rival = async (n: number) => {
      for (let i = 0; i < n; i++) await other.send('rival', { conversationId, clientMsgId: `rival-${sent}`, text: `rival ${sent++}` });
    };
    const { store, attempts } = storeLosingRaces(gw1.platform.runtime.store, rivalAppends, rival);
    const commands = commandsOn(gw1, store, contentionBudgetMs);
    const { conversationId } = await commands.create('loser', { kind: 'group', title: 'lost races', members: ['rival'] });
    await other.load(conversationId);
    const outcome = await commands.send('loser', { conversationId, clientMsgId: 'mine', text: 'after all of them' }).catch((err: Error) => err);
    const log: { seq: number; key: string }[] = [];
    for await (const e of gw1.platform.runtime.store.readSubject(gw1.platform.runtime.subjects.conv(conversationId), 0))
      if (e.event.type === 'message.sent') log.push({ seq: e.seq, key: `${e.event.actor}/${e.event.data.clientMsgId}` });
    return { commands, conversationId, outcome, log, attempts: attempts(), rivalSent: sent };
  }

  it('goes on past the old limit of 8 lost races, catching up on every event the rival stored', async () => {
    const { commands, conversationId, outcome, log, attempts, rivalSent } = await race(Array.from({ length: 12 }, () => 1));
    expect(attempts).toBe(13);
    expect(outcome).toMatchObject({ clientMsgId: 'mine', duplicate: false });
    expect(log.map((e) => e.key)).toEqual([...Array.from({ length: rivalSent }, (_, i) => `rival/rival-${i}`), 'loser/mine']);
    expect((outcome as { seq: number }).seq).toBe(log.at(-1)!.seq);
    // The caught-up state holds the rival's messages: a retry of one of them is answered from it.
    const state = await commands.load(conversationId);
    expect(state.version).toBe(log.at(-1)!.seq);
    expect(await commands.send('rival', { conversationId, clientMsgId: 'rival-5', text: 'rival 5' })).toMatchObject({ seq: log[5]!.seq, duplicate: true });
  });

  it('catches up on a gap longer than the direct reads cover (the rest by a subject read)', async () => {
    const { commands, conversationId, outcome, log } = await race([40, 1]);
    expect(outcome).toMatchObject({ clientMsgId: 'mine', duplicate: false });
    expect(log).toHaveLength(42);
    expect(log.at(-1)).toEqual({ seq: (outcome as { seq: number }).seq, key: 'loser/mine' });
    expect((await commands.load(conversationId)).version).toBe(log.at(-1)!.seq);
  });

  it('answers conflict once its time budget is spent, storing nothing', async () => {
    const { outcome, log } = await race([1, 1, 1], 0);
    expect(outcome).toMatchObject({ code: 'conflict' });
    expect(log.map((e) => e.key)).toEqual(['rival/rival-0']);
  });
});

describe('a refused conditional append', () => {
  it("names the subject's last sequence, so a catch-up knows how far to read", async () => {
    const { store, subjects } = gw1.platform.runtime;
    const commands = commandsOn(gw1, store);
    const { conversationId } = await commands.create('namer', { kind: 'group', title: 'hint', members: [] });
    await commands.send('namer', { conversationId, clientMsgId: 'one', text: 'one' });
    const last = await store.lastSubjectSeq(subjects.conv(conversationId));
    const event = {
      type: 'message.sent',
      v: 1,
      at: Date.now(),
      actor: 'namer',
      data: { conversationId, messageId: '1', clientMsgId: 'two', text: 'two' },
    } as ParleyEvent;
    const refused = await store.append(subjects.conv(conversationId), event, { expectedLastSubjectSeq: last - 1 }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(WrongLastSequence);
    expect((refused as WrongLastSequence).lastSeq).toBe(last);
  });
});

describe('both gateways', () => {
  it('logged no errors', () => {
    expect([...gw1.errorLogs, ...gw2.errorLogs]).toEqual([]);
  });
});
