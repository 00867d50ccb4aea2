import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ParleyEvent } from '../contracts/index.js';
import { projectionByName } from '../services/projector/projections.js';
import { replay } from '../services/projector/replay.js';
import { createShadowSchema, dropSchema, tableHash } from '../services/projector/shadow.js';
import { ensureCheckpointRow, inSchema } from '../services/projection/checkpoint.js';
import { appendRaw } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

/**
 * The read model is the same whatever the batches: the live runner applies
 * up to 500 events at a time, a rebuild 10,000, and a failing batch is
 * applied again one event at a time. Inside a batch, creations and messages
 * go in by runs (several conversations at once, creations first), so a log
 * with every kind of event, in many conversations, is replayed with batches
 * of 1, 7 and 10,000 into separate schemas and every table must hash the
 * same.
 */
let p: TestPlatform;
let count = 0;

/** A deterministic log: the same pseudo-random conversation every run. */
async function writeLog(): Promise<void> {
  const rt = p.platform.runtime;
  let state = 7;
  const rnd = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)]!;
  const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
  const convs: { id: string; members: string[]; msgs: { seq: number; messageId: string; sender: string }[] }[] = [];
  const T0 = 1_760_000_000_000;
  const conv = (c: { id: string }, event: Omit<ParleyEvent, 'v'>) => appendRaw(rt, rt.subjects.conv(c.id), { v: 1, ...event });
  const user = (u: string, event: Omit<ParleyEvent, 'v'>) => appendRaw(rt, rt.subjects.user(u), { v: 1, ...event });
  const create = async (id: string, members: string[], at: number, extra: Record<string, unknown> = {}) => {
    convs.push({ id, members: [...members], msgs: [] });
    await conv({ id }, {
      type: 'conversation.created',
      at,
      actor: members[0]!,
      data: {
        conversationId: id,
        kind: 'group',
        title: `t ${id}`,
        members: members.map((u, i) => ({ userId: u, role: i === 0 ? 'owner' : 'member' })),
        ...extra,
      },
    } as never);
  };
  for (let i = 0; i < 4; i++) await create(`g_${i}`, [users[i]!, users[i + 1]!, users[i + 2]!], T0);
  await create('c_chan', users.slice(0, 6), T0, { kind: 'channel', postPolicy: 'admins', joinPolicy: 'open' });
  // Never written by the platform, but a projection must still not depend on batches: a message before its conversation.
  await conv({ id: 'g_late' }, {
    type: 'message.sent',
    at: T0,
    actor: 'u1',
    data: { conversationId: 'g_late', messageId: '1', clientMsgId: 'early', text: 'too early' },
  } as never);
  await create('g_late', ['u1', 'u2'], T0);
  let clientId = 0;
  for (let step = 0; step < 400; step++, count++) {
    const r = rnd();
    const c = pick(convs);
    const at = T0 + 1000 + step;
    const target = c.msgs.length ? pick(c.msgs) : undefined;
    const ref = target && { messageId: target.messageId, seq: target.seq };
    if (r < 0.5 || !ref) {
      const sender = pick(c.members);
      const reply = ref && rnd() < 0.25 ? { replyTo: ref } : {};
      const mentions = rnd() < 0.15 ? { mentions: [pick(c.members)] } : {};
      const attachments = rnd() < 0.05 ? { attachments: [{ id: 'a'.repeat(63) + (step % 10), name: 'f.png', size: 10, contentType: 'image/png' }] } : {};
      // Now and then a client id retried after the log's dedup window: stored twice, projected once.
      const id = rnd() < 0.05 && clientId > 0 ? `k${clientId - 1}` : `k${clientId++}`;
      const messageId = String(7_300_000_000_000_000_000n + BigInt(step));
      const seq = await conv(c, {
        type: 'message.sent',
        at,
        actor: sender,
        data: {
          conversationId: c.id,
          messageId,
          clientMsgId: id,
          text: `${pick(['个人开发可以 😂', 'ok 👍', 'مرحبا', 'hello world'])} ${step}`,
          ...reply,
          ...mentions,
          ...attachments,
        },
      } as never);
      c.msgs.push({ seq, messageId, sender });
    } else if (r < 0.55) {
      await conv(c, {
        type: 'message.edited',
        at,
        actor: target!.sender,
        data: { conversationId: c.id, target: ref, text: `edited ${step}`, ...(rnd() < 0.5 ? { mentions: [pick(c.members)] } : {}) },
      } as never);
    } else if (r < 0.58) {
      await conv(c, {
        type: rnd() < 0.5 ? 'message.recalled' : 'message.deleted',
        at,
        actor: target!.sender,
        data: { conversationId: c.id, target: ref },
      } as never);
    } else if (r < 0.65) {
      await conv(c, {
        type: rnd() < 0.7 ? 'reaction.added' : 'reaction.removed',
        at,
        actor: pick(c.members),
        data: { conversationId: c.id, target: ref, emoji: pick(['👍', '😂']) },
      } as never);
    } else if (r < 0.77) {
      const u = pick(c.members);
      await user(u, { type: rnd() < 0.6 ? 'read.marked' : 'delivered.marked', at, actor: u, data: { conversationId: c.id, seq: target!.seq } } as never);
    } else if (r < 0.8) {
      const u = pick(c.members);
      await user(u, { type: 'preferences.set', at, actor: u, data: { conversationId: c.id, pinned: rnd() < 0.5 } } as never);
    } else if (r < 0.84) {
      const u = `n${step}`;
      c.members.push(u);
      await conv(c, {
        type: 'members.added',
        at,
        actor: c.members[0]!,
        data: { conversationId: c.id, members: [{ userId: u, role: 'member' }], self: false },
      } as never);
    } else if (r < 0.86 && c.members.length > 3) {
      await conv(c, { type: 'member.removed', at, actor: c.members[0]!, data: { conversationId: c.id, userId: c.members.pop()!, self: false } } as never);
    } else if (r < 0.88) {
      const u = pick(users);
      await user(u, { type: rnd() < 0.7 ? 'user.blocked' : 'user.unblocked', at, actor: u, data: { userId: pick(users) } } as never);
    } else if (r < 0.97) {
      // Conversations keep being created between messages; now and then a creation is written again.
      const again = rnd() < 0.15;
      if (again)
        await conv(c, {
          type: 'conversation.created',
          at,
          actor: 'u3',
          data: {
            conversationId: c.id,
            kind: 'group',
            title: 'again',
            members: [
              { userId: 'u3', role: 'owner' },
              { userId: 'u9', role: 'member' },
            ],
          },
        } as never);
      else await create(`g_n${step}`, [pick(users), 'u8', 'u9'], at);
    } else {
      await conv(c, { type: 'conversation.renamed', at, actor: c.members[0]!, data: { conversationId: c.id, title: `renamed ${step}` } } as never);
    }
  }
}

async function replayInto(schema: string, batchSize: number): Promise<string[]> {
  const rt = p.platform.runtime;
  const projection = projectionByName(rt.subjects, 'read-model');
  const tables = projection.tables!;
  await createShadowSchema(rt.db, schema, tables);
  try {
    await inSchema(rt.db, schema, (trx) => ensureCheckpointRow(trx, projection.name, rt.shards[0]!.shard, rt.shards[0]!.epoch));
    const result = await replay(rt, projection, { schema, batchSize, maxDeliveries: 1 });
    expect(result.parked).toBe(0);
    return await Promise.all(tables.map(async (t) => `${t} ${JSON.stringify(await tableHash(rt.db, schema, t))}`));
  } finally {
    await dropSchema(rt.db, schema);
  }
}

beforeAll(async () => {
  p = await startTestPlatform({ withWorkers: false });
  await writeLog();
});

afterAll(async () => {
  await p?.stop();
});

describe('the read model projection', () => {
  it('gives the same tables whether the log comes in batches of 10,000, 7 or 1', async () => {
    const whole = await replayInto('shadow_batch_whole', 10_000);
    expect(whole.every((h) => !h.includes('"rows":0'))).toBe(true);
    expect(await replayInto('shadow_batch_7', 7)).toEqual(whole);
    expect(await replayInto('shadow_batch_1', 1)).toEqual(whole);
    expect(count).toBe(400);
  });
});

describe('nothing unexpected was logged', () => {
  it('has no error log lines', () => {
    expect(p.errorLogs).toEqual([]);
  });
});
