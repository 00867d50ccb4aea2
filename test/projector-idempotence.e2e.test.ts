import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectors } from '../ops/cli/projectors.js';
import { READ_MODEL_TABLES } from '../services/projector/projections.js';
import type { Database } from '../services/read-store/schema.js';
import { decodeEvent, type StoredEvent } from '../services/event-log/event-store.js';
import type { ProjectionRunner } from '../services/projection/runner.js';
import { cliIO } from './support/cli.js';
import { appendRaw, waitUntil } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { api } from './support/ws-client.js';

/**
 * Every projection is idempotent per event: an event applied again (a reset
 * checkpoint, a redelivery, a rebuild after either) changes nothing, however
 * it arrives. One conversation gets sends, replies, edits, reactions taken
 * back and given again, a recall, a deletion, markers, preferences, a member
 * removed and added back, blocks; then the read model and the notifier are
 * reset to several positions, the whole log is applied again directly
 * through each projection, and every table must stay exactly as it was.
 */
let p: TestPlatform;
let db: Kysely<Database>;
const seqs = { middle: 0, firstEdit: 0, last: 0 };
const ids = { group: '' };

async function command(userId: string, body: Record<string, unknown>): Promise<Record<string, any>> {
  const r = await api(p.http, 'POST', '/v1/commands', await p.token(userId), body);
  if (r.status !== 200) throw new Error(`${userId} ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
let clientIds = 0;
const send = (userId: string, conversationId: string, text: string, extra: Record<string, unknown> = {}) =>
  command(userId, { t: 'send', conversationId, clientMsgId: `k${++clientIds}`, text, ...extra });

const runners = (): Record<'read-model' | 'notifier', ProjectionRunner> => ({
  'read-model': p.platform.projector!.runners[0]!,
  notifier: p.platform.notifier!.runner,
});

async function lastSeq(): Promise<number> {
  const rt = p.platform.runtime;
  return (await rt.nats.jsm.streams.info(rt.shards[0]!.stream)).state.last_seq;
}

async function checkpoint(projector: string): Promise<number> {
  const row = await db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', projector).executeTakeFirst();
  return Number(row?.seq ?? -1);
}

/** Both projectors have everything the log holds, and the membership reactor has nothing left to append. */
async function settled(): Promise<void> {
  let previous = -1;
  await waitUntil(
    async () => {
      const last = await lastSeq();
      const stable = last === previous;
      previous = last;
      if (!stable) return false;
      for (const [name, runner] of Object.entries(runners())) if ((await checkpoint(name)) < last || (await runner.lag()) !== 0) return false;
      return true;
    },
    15_000,
    'the projectors to catch up with a quiet log',
  );
}

/** Every row of a table as text, sorted: equal snapshots mean equal tables, whatever the row order. */
async function rows(table: string, drop: string[] = []): Promise<string[]> {
  const r = await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(db);
  return r.rows.map((row) => JSON.stringify(Object.fromEntries(Object.entries(row).filter(([k]) => !drop.includes(k))))).sort();
}

async function readModel(): Promise<Record<string, string[]>> {
  return Object.fromEntries(await Promise.all(READ_MODEL_TABLES.map(async (t) => [t, await rows(t)] as const)));
}

/** The notifier's rows, without the times they were written or cleared at (projection time, not event time). */
async function notifierRows(): Promise<Record<string, string[]>> {
  return {
    notifications: await rows('notifications', ['created_at', 'updated_at', 'cleared_at']),
    notifier_marks: await rows('notifier_marks'),
  };
}

async function reset(projector: 'read-model' | 'notifier', to: number): Promise<void> {
  const at = await checkpoint(projector);
  const out: string[] = [];
  await projectors.commands.reset!.run([projector, '--to-seq', String(to)], cliIO(p, out));
  expect(JSON.parse(out.join('\n'))).toMatchObject({ projector, from: at, to });
  await waitUntil(
    async () => (await checkpoint(projector)) >= at && (await runners()[projector].lag()) === 0,
    15_000,
    `${projector} to re-apply the log from ${to}`,
  );
}

/** The whole log, as the projections receive it. */
async function wholeLog(): Promise<StoredEvent[]> {
  const rt = p.platform.runtime;
  const out: StoredEvent[] = [];
  for (let seq = 1, last = await lastSeq(); seq <= last; seq++) {
    const m = await rt.nats.jsm.streams.getMessage(rt.shards[0]!.stream, { seq });
    if (m) out.push({ seq, subject: m.subject, event: decodeEvent(m.data) });
  }
  return out;
}

beforeAll(async () => {
  // A coalescing window of an hour: the notifications stay pending (nothing is delivered) for the whole test.
  p = await startTestPlatform({ env: { NOTIFY_COALESCE_MS: '3600000', RATE_SENDS_PER_SECOND: '10000', RATE_FRAMES_PER_SECOND: '10000' } });
  db = p.platform.runtime.db;
  // Channels for two members who stay offline: they are the ones the notifier creates rows for.
  for (const u of ['bea', 'cid']) {
    await db
      .insertInto('notification_channels')
      .values({ id: `ch_${u}`, user_id: u, kind: 'webhook', url: `https://hooks.invalid/${u}`, secret: 's'.repeat(32) })
      .execute();
  }

  const g = (await api(p.http, 'POST', '/v1/conversations', await p.token('ana'), { kind: 'group', title: 'Idempotent 幂等', members: ['bea', 'cid'] })).body
    .conversationId as string;
  ids.group = g;
  const d = (await api(p.http, 'POST', '/v1/conversations', await p.token('ana'), { kind: 'direct', peer: 'bea' })).body.conversationId as string;
  const m1 = await send('ana', g, 'first 🌱');
  const m2 = await send('ana', g, 'a reply for @bea', { replyTo: m1.messageId });
  const m3 = await send('bea', g, '你好，第三条');
  await send('ana', d, 'hi bea 👋');
  seqs.middle = m3.seq;
  const on = (messageId: string) => ({ conversationId: g, messageId });
  await command('bea', { t: 'react', ...on(m1.messageId), emoji: '👍' });
  await command('cid', { t: 'react', ...on(m1.messageId), emoji: '😂' });
  await command('bea', { t: 'unreact', ...on(m1.messageId), emoji: '👍' });
  await command('bea', { t: 'react', ...on(m1.messageId), emoji: '👍' });
  seqs.firstEdit = (await command('ana', { t: 'edit', ...on(m1.messageId), text: 'first, edited' })).seq;
  await command('ana', { t: 'edit', ...on(m1.messageId), text: 'first, edited again @cid' });
  await command('ana', { t: 'recall', ...on(m2.messageId) });
  await command('bea', { t: 'mark_read', conversationId: g, seq: m3.seq });
  await command('cid', { t: 'mark_delivered', conversationId: g, seq: m3.seq });
  await command('ana', { t: 'rename', conversationId: g, title: 'Renamed 🌿' });
  await command('ana', { t: 'set_role', conversationId: g, userId: 'bea', role: 'admin' });
  // Preferences of a membership that ends: the member added back later starts afresh.
  await command('cid', { t: 'set_preferences', conversationId: g, pinned: true, archived: true });
  // A mute that has ended by the time the last message comes: replaying it must not clear that message's notification.
  await command('bea', { t: 'set_preferences', conversationId: g, mutedUntil: Date.now() + 3_600_000 });
  await command('bea', { t: 'set_preferences', conversationId: g, mutedUntil: null });
  await command('ana', { t: 'add_members', conversationId: g, userIds: ['dan'] });
  await command('ana', { t: 'remove_member', conversationId: g, userId: 'cid' });
  await command('ana', { t: 'add_members', conversationId: g, userIds: ['cid'] });
  await command('bea', { t: 'block', userId: 'dan' });
  await command('bea', { t: 'unblock', userId: 'dan' });
  await command('bea', { t: 'block', userId: 'eve' });
  await command('bea', { t: 'delete', ...on(m3.messageId) });
  seqs.last = (await send('ana', g, 'the last one, @bea')).seq;
  await settled();
});

afterAll(async () => {
  await p?.stop();
});

describe('projections are idempotent per event', () => {
  it('the scenario left what it should (so the comparisons below compare something)', async () => {
    const m = await db.selectFrom('messages').select(['text', 'status', 'edit_count']).orderBy('seq').execute();
    expect(m.map((r) => [r.status, r.edit_count])).toEqual([
      ['active', 2],
      ['recalled', 0],
      ['deleted', 0],
      ['active', 0],
      ['active', 0],
    ]);
    expect(await db.selectFrom('message_versions').select('version').orderBy('version').execute()).toEqual([{ version: 0 }, { version: 1 }, { version: 2 }]);
    expect((await db.selectFrom('message_reactions').select('emoji').orderBy('emoji').execute()).map((r) => r.emoji).sort()).toEqual(['👍', '😂'].sort());
    const cid = await db.selectFrom('conversation_members').selectAll().where('user_id', '=', 'cid').executeTakeFirstOrThrow();
    expect([cid.pinned, cid.archived]).toEqual([false, false]);
    expect(await db.selectFrom('conversations').select('member_count').where('kind', '=', 'group').executeTakeFirstOrThrow()).toEqual({ member_count: 4 });
    const pending = await db
      .selectFrom('notifications')
      .select(['user_id', 'last_seq'])
      .where('conversation_id', '=', ids.group)
      .where('status', '=', 'pending')
      .orderBy('user_id')
      .execute();
    expect(pending).toEqual([
      { user_id: 'bea', last_seq: String(seqs.last) },
      { user_id: 'cid', last_seq: String(seqs.last) },
    ]);
  });

  it('a read model reset to the start, the middle or just before an edit converges to the same rows', async () => {
    const before = await readModel();
    for (const to of [0, seqs.middle, seqs.firstEdit - 1]) {
      await reset('read-model', to);
      expect(await readModel(), `after a reset to ${to}`).toEqual(before);
    }
  });

  it('a notifier reset to the start re-applies clears, and clears nothing that came after them', async () => {
    const before = await notifierRows();
    for (const to of [0, seqs.firstEdit - 1]) {
      await reset('notifier', to);
      expect(await notifierRows(), `after a reset to ${to}`).toEqual(before);
    }
  });

  it('the whole log delivered again, as one batch, event by event and backwards, changes nothing', async () => {
    const log = await wholeLog();
    const before = { ...(await readModel()), ...(await notifierRows()) };
    for (const runner of Object.values(runners())) {
      await db.transaction().execute((trx) => runner.projection.apply(trx, log));
      await db.transaction().execute((trx) => runner.projection.apply(trx, log));
      for (const event of log) await db.transaction().execute((trx) => runner.projection.apply(trx, [event]));
      // Any single event again, whatever came after it: an old unblock, preference or removal is recognised as applied.
      for (const event of [...log].reverse()) await db.transaction().execute((trx) => runner.projection.apply(trx, [event]));
    }
    expect({ ...(await readModel()), ...(await notifierRows()) }).toEqual(before);
  });

  it('a rebuild after the resets verifies against the live tables and swaps, without --no-verify', async () => {
    const before = await readModel();
    const out: string[] = [];
    const err: string[] = [];
    await projectors.commands.rebuild!.run(['read-model'], cliIO(p, out, err));
    const report = JSON.parse(out.join('\n')) as { comparison: { table: string; equal: boolean }[] };
    expect(report.comparison.map((c) => c.table).sort()).toEqual([...READ_MODEL_TABLES].sort());
    expect(report.comparison.filter((c) => !c.equal)).toEqual([]);
    expect(await readModel()).toEqual(before);
  });
});

describe('events outside their entity’s order', () => {
  it('are not applied: another conversation’s edit on a subject, a reaction in a conversation that was never created', async () => {
    const rt = p.platform.runtime;
    const direct = await db
      .selectFrom('messages')
      .select(['conversation_id', 'seq', 'message_id'])
      .where('conversation_id', '!=', ids.group)
      .executeTakeFirstOrThrow();
    const target = { messageId: direct.message_id, seq: Number(direct.seq) };
    const before = await readModel();
    // Never appended by the write side: the group's subject carrying an edit of the 1:1's message, and a reaction
    // on the subject of a conversation with no creation. Either, applied, would escape the per-entity sequence.
    await appendRaw(rt, rt.subjects.conv(ids.group), {
      type: 'message.edited',
      v: 1,
      at: Date.now(),
      actor: 'ana',
      data: { conversationId: direct.conversation_id, target, text: 'forged' },
    });
    await appendRaw(rt, rt.subjects.conv('g_nowhere'), {
      type: 'reaction.added',
      v: 1,
      at: Date.now(),
      actor: 'ana',
      data: { conversationId: 'g_nowhere', target, emoji: '👍' },
    });
    await settled();
    expect(await readModel()).toEqual(before);
    expect(await db.selectFrom('messages').select('edit_count').where('conversation_id', '=', direct.conversation_id).executeTakeFirstOrThrow()).toEqual({
      edit_count: 0,
    });
  });
});

describe('nothing unexpected was logged', () => {
  it('has no error log lines', () => {
    expect(p.errorLogs).toEqual([]);
  });
});
