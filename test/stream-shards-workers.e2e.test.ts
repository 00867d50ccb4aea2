import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOf } from '../contracts/index.js';
import { main } from '../ops/cli/main.js';
import { projectors } from '../ops/cli/projectors.js';
import type { CliIO } from '../ops/cli/command.js';
import { startRoles, type RoleProcess } from '../ops/platform.js';
import { loadConfig } from '../services/runtime/config.js';
import { createLogger } from '../services/observability/logger.js';
import { READ_MODEL_TABLES } from '../services/projector/projections.js';
import { tableHash } from '../services/projector/shadow.js';
import { cliIO } from './support/cli.js';
import { HttpReceiver } from './support/http-receiver.js';
import { notificationApi, waitFor } from './support/notifications.js';
import { startTestPlatform, TEST_JWT_SECRET, type TestPlatform } from './support/platform.js';
import { api } from './support/ws-client.js';

/**
 * The projector, the notifier and their operator commands with the log spread
 * over two shard streams (STREAM_SHARDS=2): every shard has its own durable
 * consumer and checkpoint row, conversations and users of both shards reach the
 * read model and notifications, a rebuild replays both shards and converges on
 * the same rows, a reset moves one shard only, and a takeover of the
 * single-active roles takes over both shards.
 */
const SHARDS = 2;
const TTL_SECONDS = 2;
const env = {
  STREAM_SHARDS: String(SHARDS),
  NOTIFY_COALESCE_MS: '300',
  NOTIFY_ALLOW_HTTP: 'true',
  NOTIFY_ALLOW_PRIVATE_TARGETS: 'true',
};
let gw: TestPlatform;
let hooks: HttpReceiver;
const workers: RoleProcess[] = [];

/** Users named `<prefix><n>` on shard 0 and on shard 1. */
function usersOnShards(prefix: string): [string, string] {
  const found: (string | undefined)[] = [undefined, undefined];
  for (let i = 0; found.some((u) => u === undefined); i++) found[shardOf(`${prefix}${i}`, SHARDS)] ??= `${prefix}${i}`;
  return found as [string, string];
}

async function startWorkers(): Promise<RoleProcess> {
  const config = loadConfig({
    ...env,
    PARLEY_NAMESPACE: gw.namespace,
    PARLEY_DATA_DIR: gw.config.dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    NODE_ID: String(2 + workers.length),
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    PARLEY_ROLES: 'workers',
    ROLE_LEASE_TTL_SECONDS: String(TTL_SECONDS),
    PROJECTOR_RETRY_DELAY_MS: '200',
  });
  const w = await startRoles(config, createLogger({ level: 'silent' }), { natsUrl: gw.natsUrl, databaseUrl: gw.databaseUrl });
  workers.push(w);
  return w;
}

/** The operator CLI against this deployment (its STREAM_SHARDS included, as the services have it). */
function io(out: string[], err: string[] = []): CliIO {
  const base = cliIO(gw, out, err);
  return { ...base, env: { ...base.env, STREAM_SHARDS: String(SHARDS) } };
}

async function cli(command: string, args: string[]): Promise<any> {
  const out: string[] = [];
  await projectors.commands[command]!.run(args, io(out));
  return JSON.parse(out.join('\n'));
}

const db = () => gw.platform.runtime.db;
const subjects = () => gw.platform.runtime.subjects;

async function checkpoints(projector: string): Promise<{ shard: number; seq: number; updatedAt: number }[]> {
  const rows = await db().selectFrom('projector_checkpoints').selectAll().where('projector', '=', projector).orderBy('shard').execute();
  return rows.map((r) => ({ shard: r.shard, seq: Number(r.seq), updatedAt: (r.updated_at as unknown as Date).getTime() }));
}

/** Every shard's stream head, index k for shard k. */
async function heads(): Promise<number[]> {
  const store = gw.platform.runtime.store;
  return Promise.all(gw.platform.runtime.shards.map(async (s) => (await store.shard(s.shard).bounds()).lastSeq));
}

/** Until `projector` has every shard's log applied (a checkpoint row per shard at its stream's head). */
async function caughtUp(projector: string): Promise<void> {
  await waitFor(
    `${projector} at the head of every shard`,
    async () => {
      const [rows, last] = [await checkpoints(projector), await heads()];
      return rows.length === SHARDS && rows.every((r) => r.seq === last[r.shard]);
    },
    15_000,
  );
}

async function readModelHashes(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of READ_MODEL_TABLES) {
    const h = await tableHash(db(), 'public', t);
    out[t] = `${h.rows}:${h.md5}`;
  }
  return out;
}

const as = async (userId: string, method: 'GET' | 'POST', path: string, body?: unknown) => api(gw.http, method, path, await gw.token(userId), body);

async function send(userId: string, conversationId: string, text: string): Promise<{ seq: number }> {
  const r = await as(userId, 'POST', '/v1/commands', { t: 'send', conversationId, clientMsgId: `m${Math.random().toString(36).slice(2)}`, text });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

async function history(userId: string, conversationId: string): Promise<string[]> {
  const r = await as(userId, 'GET', `/v1/conversations/${conversationId}/messages?limit=200`);
  // Until its creation is projected the conversation has no members in the read model (403).
  if (r.status === 403) return [];
  expect(r.status).toBe(200);
  return (r.body.messages as { text: string }[]).map((m) => m.text).reverse();
}

// Owners, members and webhook users, each pair on shard 0 and shard 1.
const [owner0, owner1] = usersOnShards('own');
const [reader0, reader1] = usersOnShards('rdr');
/** A conversation id on each shard (ids are minted by the server: created until both shards have one), and its owner. */
let conv: string[] = [];
const ownerOf = new Map<string, string>();

beforeAll(async () => {
  gw = await startTestPlatform({ withWorkers: false, env });
  hooks = await HttpReceiver.start();
  await startWorkers();
  const n = notificationApi(gw);
  for (const u of [reader0, reader1]) await n.webhook(u, hooks.url(`/${u}`));
  const found: (string | undefined)[] = [undefined, undefined];
  for (let i = 0; found.includes(undefined); i++) {
    if (i > 40) throw new Error('no conversation landed on one of the shards');
    const owner = i % 2 ? owner1 : owner0;
    const r = await as(owner, 'POST', '/v1/conversations', { kind: 'group', title: `g${i}`, members: [reader0, reader1] });
    expect(r.status).toBe(201);
    const k = subjects().shardOf(r.body.conversationId);
    found[k] ??= r.body.conversationId;
    ownerOf.set(r.body.conversationId, owner);
  }
  conv = found as string[];
}, 60_000);

afterAll(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  await gw?.stop();
  await hooks?.close();
});

describe('projectors over two stream shards', () => {
  it('project conversations and users of both shards, with a consumer and a checkpoint row per shard', async () => {
    // The setup is what it means to be: entities on both shards.
    expect([owner0, reader0].map((u) => subjects().shardOf(u))).toEqual([0, 0]);
    expect([owner1, reader1].map((u) => subjects().shardOf(u))).toEqual([1, 1]);
    expect(conv.map((c) => subjects().shardOf(c))).toEqual([0, 1]);
    expect(subjects().conv(conv[1]!)).toBe(`${gw.namespace}.ev.1.conv.${conv[1]}`);

    for (const [k, c] of conv.entries()) for (let i = 0; i < 3; i++) await send(ownerOf.get(c)!, c, `s${k} m${i}`);
    await caughtUp('read-model');
    for (const [k, c] of conv.entries()) expect(await history(reader0, c)).toEqual([0, 1, 2].map((i) => `s${k} m${i}`));

    // A user on each shard reads a conversation on each shard: the marker (a user event) reaches the member row.
    const last = await Promise.all(conv.map(async (c) => (await as(reader0, 'GET', `/v1/conversations/${c}/messages?limit=1`)).body.messages[0].seq));
    await as(reader0, 'POST', '/v1/commands', { t: 'mark_read', conversationId: conv[1], seq: last[1] });
    await as(reader1, 'POST', '/v1/commands', { t: 'mark_read', conversationId: conv[0], seq: last[0] });
    await caughtUp('read-model');
    const list = async (u: string) => {
      const r = await as(u, 'GET', '/v1/conversations');
      expect(r.status).toBe(200);
      return Object.fromEntries((r.body.conversations as { conversationId: string; unread: number }[]).map((c) => [c.conversationId, c.unread]));
    };
    expect(await list(reader0)).toMatchObject({ [conv[0]!]: 3, [conv[1]!]: 0 });
    expect(await list(reader1)).toMatchObject({ [conv[0]!]: 0, [conv[1]!]: 3 });

    const rows = await checkpoints('read-model');
    expect(rows.map((r) => r.shard)).toEqual([0, 1]);
    expect(rows.every((r) => r.seq > 0)).toBe(true);
    const jsm = gw.platform.runtime.nats.jsm;
    const streams = gw.platform.runtime.shards.map((s) => s.stream);
    expect((await jsm.consumers.info(streams[0]!, `${gw.namespace}-read-model`)).num_pending).toBe(0);
    expect((await jsm.consumers.info(streams[1]!, `${gw.namespace}-read-model_s1`)).num_pending).toBe(0);

    // The operator sees every shard.
    const status = (await cli('lag', [])) as { projector: string; shard: number; checkpoint: number; lag: number | null }[];
    const readModel = status.filter((s) => s.projector === 'read-model');
    expect(readModel.map((s) => [s.shard, s.checkpoint, s.lag])).toEqual([
      [0, rows[0]!.seq, 0],
      [1, rows[1]!.seq, 0],
    ]);
  }, 60_000);

  it("a member's marker on another shard than the conversation is not lost while that shard's projector is behind", async () => {
    const s0 = workers[0]!.projector!.runners[0]!.shards[0]!;
    const [, late] = usersOnShards('late');
    const c = conv[0]!;
    await caughtUp('read-model');
    await s0.stop();
    try {
      // Shard 0 (the conversation's) is not projected meanwhile: the new member has no row in the read model yet.
      expect((await as(ownerOf.get(c)!, 'POST', '/v1/commands', { t: 'add_members', conversationId: c, userIds: [late] })).status).toBe(200);
      const m = await send(ownerOf.get(c)!, c, 'for the late one');
      expect((await as(late, 'POST', '/v1/commands', { t: 'mark_read', conversationId: c, seq: m.seq })).status).toBe(200);
      await sleep(300);
    } finally {
      await s0.start();
    }
    await caughtUp('read-model');
    const r = await as(late, 'GET', '/v1/conversations');
    expect((r.body.conversations as { conversationId: string; unread: number }[]).find((x) => x.conversationId === c)).toMatchObject({ unread: 0 });
  }, 60_000);

  it("a member's preferences on another shard than the conversation are not lost while that shard's projector is behind", async () => {
    const s0 = workers[0]!.projector!.runners[0]!.shards[0]!;
    const [, prefs] = usersOnShards('prefs');
    const c = conv[0]!;
    const owner = ownerOf.get(c)!;
    const mutedUntil = Date.now() + 3_600_000;
    const hooked = `/${prefs}`;
    await notificationApi(gw).webhook(prefs, hooks.url(hooked));
    await caughtUp('read-model');
    await s0.stop();
    try {
      // Shard 0 (the conversation's) is not projected meanwhile: the new member has no row in the read model yet
      // when shard 1's runner gets to the user's setting.
      expect((await as(owner, 'POST', '/v1/commands', { t: 'add_members', conversationId: c, userIds: [prefs] })).status).toBe(200);
      const set = await as(prefs, 'POST', '/v1/commands', { t: 'set_preferences', conversationId: c, pinned: true, mutedUntil });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
      await sleep(500);
    } finally {
      await s0.start();
    }
    await caughtUp('read-model');
    const mine = async () =>
      ((await as(prefs, 'GET', '/v1/conversations')).body.conversations as { conversationId: string }[]).find((x) => x.conversationId === c);
    expect(await mine()).toMatchObject({ pinned: true, mutedUntil });

    // The mute holds for the notifier too: the other readers are notified of a new message, the muted member is not.
    const before = hooks.requests.length;
    await send(owner, c, 'not for the muted one');
    await waitFor('the other readers notified', () => new Set(hooks.requests.slice(before).map((r) => r.path)).size >= 2, 15_000);
    await caughtUp('notifier');
    await sleep(600);
    expect(hooks.requests.slice(before).filter((r) => r.path === hooked)).toEqual([]);

    // Left and added again: the new membership starts without the old one's settings, however the shards interleave
    // (a rebuild replays the conversation first, then the user's setting of the earlier membership).
    expect((await as(owner, 'POST', '/v1/commands', { t: 'remove_member', conversationId: c, userId: prefs })).status).toBe(200);
    expect((await as(owner, 'POST', '/v1/commands', { t: 'add_members', conversationId: c, userIds: [prefs] })).status).toBe(200);
    await caughtUp('read-model');
    expect(await mine()).toMatchObject({ pinned: false, mutedUntil: null });
    const hashes = await readModelHashes();
    const report = await cli('rebuild', ['read-model']);
    expect(report.comparison.every((x: { equal: boolean }) => x.equal)).toBe(true);
    expect(await readModelHashes()).toEqual(hashes);
    expect(await mine()).toMatchObject({ pinned: false, mutedUntil: null });
    // Not a reader of the tests below.
    expect((await as(owner, 'POST', '/v1/commands', { t: 'remove_member', conversationId: c, userId: prefs })).status).toBe(200);
  }, 60_000);

  it("a member's mute on another shard than the conversation clears the notification that shard's notifier opens later", async () => {
    const notifier0 = workers[0]!.notifier!.runner.shards[0]!;
    const readModel1 = workers[0]!.projector!.runners[0]!.shards[1]!;
    const c = conv[0]!;
    await caughtUp('read-model');
    await caughtUp('notifier');
    const before = hooks.requests.length;
    await notifier0.stop();
    await readModel1.stop();
    let held = true;
    try {
      await send(ownerOf.get(c)!, c, 'muted before it is notified');
      // reader1 (shard 1) mutes the conversation (shard 0) whose notifier has not seen the message yet, and the read
      // model has not got the mute when it does: only the mute's clear can keep the notification from going out.
      const set = await as(reader1, 'POST', '/v1/commands', { t: 'set_preferences', conversationId: c, mutedUntil: Date.now() + 3_600_000 });
      expect(set.status).toBe(200);
      await sleep(300);
      held = false;
      await notifier0.start();
      await caughtUp('notifier');
    } finally {
      if (held) await notifier0.start();
      await readModel1.start();
    }
    const delivered = (path: string) => hooks.requests.slice(before).filter((r) => r.path === path && JSON.parse(r.body.toString('utf8')).conversationId === c);
    await waitFor('the unmuted reader notified', () => delivered(`/${reader0}`).length > 0, 15_000);
    await sleep(600);
    expect(delivered(`/${reader1}`)).toEqual([]);
    expect((await as(reader1, 'POST', '/v1/commands', { t: 'set_preferences', conversationId: c, mutedUntil: null })).status).toBe(200);
    await caughtUp('read-model');
  }, 60_000);

  it('notify offline members of conversations on either shard', async () => {
    const before = hooks.requests.length;
    for (const c of conv) await send(ownerOf.get(c)!, c, `ping ${c}`);
    const got = await waitFor(
      'a notification for each reader and conversation',
      () => {
        const bodies = hooks.requests.slice(before).map((r) => ({ path: r.path, body: JSON.parse(r.body.toString('utf8')) }));
        const keys = new Set(bodies.map((b) => `${b.path}:${b.body.conversationId}`));
        return keys.size >= 4 && bodies;
      },
      15_000,
    );
    const keys = [...new Set(got.map((b) => `${b.path}:${b.body.conversationId}`))].sort();
    expect(keys).toEqual([`/${reader0}:${conv[0]}`, `/${reader0}:${conv[1]}`, `/${reader1}:${conv[0]}`, `/${reader1}:${conv[1]}`].sort());
    await caughtUp('notifier');
    const marks = await db().selectFrom('notifier_marks').selectAll().orderBy('shard').execute();
    expect(marks.map((m) => m.shard)).toEqual([0, 1]);
  }, 60_000);

  it('rebuild replays both shards into shadow tables and converges on the same rows', async () => {
    await caughtUp('read-model');
    const before = await readModelHashes();
    const report = await cli('rebuild', ['read-model']);
    expect(report.comparison.every((c: { equal: boolean }) => c.equal)).toBe(true);
    expect(report.checkpoints).toEqual(await heads());
    expect((await checkpoints('read-model')).map((r) => r.seq)).toEqual(report.checkpoints);
    expect(await readModelHashes()).toEqual(before);

    // With messages and markers arriving on both shards meanwhile: the swap brings every shard to the live position.
    const rebuilding = cli('rebuild', ['read-model']);
    for (let i = 0; i < 6; i++) {
      const c = conv[i % 2]!;
      const m = await send(ownerOf.get(c)!, c, `during rebuild ${i}`);
      await as(i % 4 < 2 ? reader0 : reader1, 'POST', '/v1/commands', { t: 'mark_read', conversationId: c, seq: m.seq });
    }
    const during = await rebuilding;
    expect(during.comparison.every((c: { equal: boolean }) => c.equal)).toBe(true);
    await caughtUp('read-model');
    // A position of one shard is meaningless for the other.
    const err: string[] = [];
    expect(await main(['projectors', 'rebuild', 'read-model', '--from-seq', '3'], io([], err))).toBe(1);
    expect(err.join('\n')).toContain('--from-seq is a sequence of one shard');
  }, 60_000);

  it("reset moves one shard's checkpoint: only that shard replays, idempotently; --shard is required", async () => {
    await caughtUp('read-model');
    const usage: string[] = [];
    expect(await main(['projectors', 'reset', 'read-model', '--to-seq', '0'], io([], usage))).toBe(2);
    expect(usage.join('\n')).toContain('--shard');
    // Run with another STREAM_SHARDS than the deployment's (here: none, 1), the CLI refuses rather than see shard 0 only.
    const wrong: string[] = [];
    expect(await main(['projectors', 'reset', 'read-model', '--to-seq', '0'], cliIO(gw, [], wrong))).toBe(1);
    expect(wrong.join('\n')).toContain('STREAM_SHARDS=1 does not match this deployment');
    const [cp0, cp1] = [...(await checkpoints('read-model'))] as const;
    const before = await readModelHashes();
    expect(await cli('reset', ['read-model', '--to-seq', '0', '--shard', '1'])).toMatchObject({ shard: 1, from: cp1!.seq, to: 0, consumerDeleted: true });
    await caughtUp('read-model');
    const after = await checkpoints('read-model');
    // Shard 1 went back to 0 and came forward again; shard 0 was not touched.
    expect(after[1]!.seq).toBe(cp1!.seq);
    expect(after[1]!.updatedAt).toBeGreaterThan(cp1!.updatedAt);
    expect(after[0]).toEqual(cp0);
    expect(await readModelHashes()).toEqual(before);
  }, 60_000);

  it('a takeover of the single-active roles takes over every shard', async () => {
    const a = workers[0]!;
    const b = await startWorkers();
    expect(b.projector).toBeUndefined();
    expect(a.projector!.runners[0]!.shards).toHaveLength(SHARDS);
    await a.stop();
    await waitFor('the standby to take over', () => b.projector !== undefined && b.notifier !== undefined, 4 * TTL_SECONDS * 1000);
    expect(b.projector!.runners[0]!.shards.map((s) => s.consumerName)).toEqual([`${gw.namespace}-read-model`, `${gw.namespace}-read-model_s1`]);
    for (const [k, c] of conv.entries()) await send(ownerOf.get(c)!, c, `after takeover ${k}`);
    await caughtUp('read-model');
    for (const [k, c] of conv.entries()) expect((await history(reader1, c)).at(-1)).toBe(`after takeover ${k}`);
    await caughtUp('notifier');
  }, 60_000);
});
