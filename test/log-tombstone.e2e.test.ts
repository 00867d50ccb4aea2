import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../ops/cli/main.js';
import { projectionByName } from '../services/projector/projections.js';
import { rebuild } from '../services/projector/rebuild.js';
import { tableHash } from '../services/projector/shadow.js';
import { AnalyticsTables } from './support/analytics.js';
import { cliIO } from './support/cli.js';
import { appendRaw, waitUntil } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { api, TestClient } from './support/ws-client.js';

/**
 * Events published around the write side (a raw `nats pub` / JetStream
 * publish onto a conversation's subject) against the real platform: the
 * conversation stays writable and resumable, the projectors park what they
 * cannot read, `parley log tombstone` resolves it everywhere, and a rebuild
 * from the start of the log gives the same rows.
 */
let p: TestPlatform;
const clients: TestClient[] = [];
let group = '';
let position: string | null = null;

async function connect(userId: string, from?: string | null): Promise<TestClient> {
  const c = await TestClient.connect(p.ws, await p.token(userId), from);
  clients.push(c);
  return c;
}

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, cliIO(p, out, err));
  return { code, out, err };
}

async function openParked(): Promise<{ projector: string; seq: number; status: string; reason: string }[]> {
  const r = await cli('parked', 'list');
  expect(r.code, r.err.join('\n')).toBe(0);
  return r.out.map((l) => JSON.parse(l));
}

async function caughtUp(): Promise<void> {
  for (const runner of [...p.platform.projector!.runners, ...(p.platform.notifier ? [p.platform.notifier.runner] : [])]) {
    await waitUntil(async () => (await runner.lag()) === 0, 10_000, `${runner.projection.name} to catch up`);
  }
}

async function history(): Promise<string[]> {
  const r = await api(p.http, 'GET', `/v1/conversations/${group}/messages?limit=100`, await p.token('alice'));
  expect(r.status).toBe(200);
  return (r.body.messages as { text: string }[]).map((m) => m.text).reverse();
}

function hashes() {
  const rt = p.platform.runtime;
  return Promise.all(projectionByName(rt.subjects, 'read-model').tables!.map(async (t) => [t, await tableHash(rt.db, 'public', t)] as const));
}

beforeAll(async () => {
  p = await startTestPlatform();
  const alice = await connect('alice');
  group = (await api(p.http, 'POST', '/v1/conversations', await p.token('alice'), { kind: 'group', title: 'Poison', members: ['bob'] })).body.conversationId;
  await alice.joined(group);
  expect((await alice.send(group, 'm0')).t).toBe('ack');
  await alice.message(group, 'm0');
  position = alice.position;
  // Nobody is connected while the poison goes in: live delivery forwards stored bytes undecoded, and this file's
  // client (unlike the SDK, which drops them) fails on a frame that is not JSON. Resumes are what is tested here.
  await alice.close();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await p?.stop();
});

describe('an event the platform cannot read, on a conversation subject', () => {
  const poisons: number[] = [];

  it('does not wedge the conversation: resumes skip it and every send is stored', async () => {
    const rt = p.platform.runtime;
    const subject = rt.subjects.conv(group);
    poisons.push(await appendRaw(rt, subject, 'not json {'));
    poisons.push(await appendRaw(rt, subject, { type: 'message.sent', v: 1, at: Date.now(), actor: 'mallory', data: { conversationId: group, text: 42 } }));
    poisons.push(await appendRaw(rt, subject, { type: 'message.sent', v: 99, at: Date.now(), actor: 'mallory', data: {} }));

    // The write side folds the subject across the poison (before: every send answered `internal`, retryable, forever).
    const bob = await connect('bob');
    expect(await bob.send(group, 'm1')).toMatchObject({ t: 'ack' });

    // The resume's range covers the poison: it completes, without it (before: the resume failed).
    const alice = await connect('alice', position);
    const synced = alice.frames.find((f) => f.t === 'synced')!;
    expect(synced.status).toBe('complete');
    expect(alice.frames.filter((f) => f.t === 'event' && poisons.includes(f.seq))).toEqual([]);

    for (const [who, text] of [
      [bob, 'm2'],
      [alice, 'm3'],
    ] as const) {
      const reply = await who.send(group, text);
      expect(reply, JSON.stringify(reply)).toMatchObject({ t: 'ack' });
    }
    await alice.message(group, 'm3');
    // The write side counted what it skipped.
    expect(await rt.metrics.render()).toMatch(/parley_log_unreadable_events_total\{reader="write"\} [1-9]/);
  });

  it('is parked by the projectors, holding its conversation back; `log tombstone` resolves it and the held events flow', async () => {
    await caughtUp();
    let open = await openParked();
    const readModel = open.filter((r) => r.projector === 'read-model');
    expect(readModel.find((r) => r.seq === poisons[0])).toMatchObject({ status: 'parked' });
    expect(readModel.filter((r) => r.status === 'held').length).toBeGreaterThanOrEqual(3);
    expect(await history()).toEqual(['m0']);

    // The read model stopped at m0, but the log went on: a device resuming from before the poison still gets every
    // message stored since, in the resume itself (before: the index said "unchanged" and the resume skipped them).
    const device = await connect('alice', position);
    const replayed = device.frames
      .filter((f) => f.t === 'event' && f.event.type === 'message.sent' && f.event.data.conversationId === group)
      .map((f) => f.event.data.text);
    expect(replayed).toEqual(['m1', 'm2', 'm3']);
    expect(device.frames.find((f) => f.t === 'synced')).toMatchObject({ status: 'complete' });
    await device.close();

    for (const [i, seq] of poisons.entries()) {
      const r = await cli('log', 'tombstone', '--seq', String(seq), '--reason', 'published around the write side', '--by', 'ops-anna');
      expect(r.code, r.err.join('\n')).toBe(0);
      const report = JSON.parse(r.out.join('\n'));
      expect(report).toMatchObject({ seq, readable: false, subject: p.platform.runtime.subjects.conv(group) });
      expect(report.tombstoneSeq).toBeGreaterThan(seq);
      // Each was parked (or held behind the one before) by the read model and the notifier: resolved by the tombstone.
      expect(report.projectors['read-model']).toBe('resolved');
      // "resolved" alone would hide that the release stopped at the next poison: the report names what still blocks.
      const next = poisons[i + 1];
      if (next === undefined) {
        expect(report.stillBlockedBy).toBeUndefined();
      } else {
        expect(report.stillBlockedBy['read-model']).toEqual([next]);
        expect(report.blockedNote).toContain(`at ${next} `);
      }
    }
    await caughtUp();
    open = await openParked();
    expect(open).toEqual([]);
    expect(await history()).toEqual(['m0', 'm1', 'm2', 'm3']);

    // Tombstoning again changes nothing; the tombstones are listed.
    const again = await cli('log', 'tombstone', '--seq', String(poisons[0]), '--reason', 'again');
    expect(JSON.parse(again.out.join('\n'))).toMatchObject({ alreadyTombstoned: true, by: 'ops-anna' });
    const list = await cli('log', 'tombstones');
    expect(list.out.map((l) => JSON.parse(l).seq)).toEqual(poisons);

    // Still writable after the tombstones (the write side folds them in and chains on them).
    const alice = await connect('alice');
    expect((await alice.send(group, 'm4')).t).toBe('ack');
    await caughtUp();
    expect(await history()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  it('a rebuild from the start of the log skips the tombstoned events and gives the same rows', async () => {
    await caughtUp();
    const rt = p.platform.runtime;
    const before = await hashes();
    const report = await rebuild(rt, projectionByName(rt.subjects, 'read-model'), { maxDeliveries: 2 });
    expect(report.comparison).not.toBeNull();
    for (const c of report.comparison!) expect(c, c.table).toMatchObject({ equal: true });
    expect(report.replayed.parked).toBe(0);
    expect(await hashes()).toEqual(before);
    expect(await openParked()).toEqual([]);

    // A database that lost its tombstone index (a fresh one, restored from the log alone): the replay parks the
    // poison, meets its tombstone later in the log, releases what it held, and records the index again.
    await rt.db.deleteFrom('log_tombstones').execute();
    const fresh = await rebuild(rt, projectionByName(rt.subjects, 'read-model'), { maxDeliveries: 2, batchSize: 2 });
    for (const c of fresh.comparison!) expect(c, c.table).toMatchObject({ equal: true });
    expect(await hashes()).toEqual(before);
    expect(await openParked()).toEqual([]);
    expect((await cli('log', 'tombstones')).out.map((l) => JSON.parse(l).seq)).toEqual(poisons);
  });

  it('refuses what it cannot tombstone, with a usage or a typed error', async () => {
    expect((await cli('log', 'tombstone', '--seq', '1')).code).toBe(2); // no reason
    expect((await cli('log', 'tombstone', '--seq', '1', '--reason', 'x', '--stream', 'other_events_0')).code).toBe(2);
    const missing = await cli('log', 'tombstone', '--seq', '999999', '--reason', 'x');
    expect(missing.code).toBe(1);
    expect(missing.err.join('\n')).toContain('[not_found]');
    const list = await cli('log', 'tombstones');
    const tomb = JSON.parse(list.out[0]!).tombstoneSeq as number;
    const self = await cli('log', 'tombstone', '--seq', String(tomb), '--reason', 'x');
    expect(self.code).toBe(1);
    expect(self.err.join('\n')).toContain('itself a tombstone');
  });
});

describe('decodable events that make no sense', () => {
  it('wedge nothing: the write side and the projectors take them as no-ops', async () => {
    const rt = p.platform.runtime;
    const subject = rt.subjects.conv(group);
    const at = Date.now();
    // An edit of a message that does not exist, and a user's event on the conversation's subject.
    await appendRaw(rt, subject, {
      type: 'message.edited',
      v: 1,
      at,
      actor: 'mallory',
      data: { conversationId: group, target: { messageId: '123', seq: 999_999 }, text: 'edited' },
    });
    await appendRaw(rt, subject, { type: 'read.marked', v: 1, at, actor: 'mallory', data: { conversationId: group, seq: 1 } });
    const alice = await connect('alice');
    expect((await alice.send(group, 'm5')).t).toBe('ack');
    await caughtUp();
    expect(await openParked()).toEqual([]);
    expect(await history()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  });

  it('a tombstone of one the write side folded in (a forged removal) makes it fold the conversation again without it', async () => {
    const rt = p.platform.runtime;
    const forged = await appendRaw(rt, rt.subjects.conv(group), {
      type: 'member.removed',
      v: 1,
      at: Date.now(),
      actor: 'alice',
      data: { conversationId: group, userId: 'bob', self: false },
    });
    const bob = await connect('bob');
    expect(await bob.send(group, 'refused')).toMatchObject({ t: 'error', code: 'not_member' });
    await caughtUp();

    const r = await cli('log', 'tombstone', '--seq', String(forged), '--reason', 'forged removal');
    expect(r.code, r.err.join('\n')).toBe(0);
    const report = JSON.parse(r.out.join('\n'));
    // The read model applied it before the tombstone existed: the command says so, and what to run.
    expect(report).toMatchObject({ readable: true, eventType: 'member.removed', projectors: { 'read-model': 'applied_before_tombstone' } });
    expect(report.note).toContain('projectors rebuild');

    // The membership reactor had told bob's devices he left; it re-derives his membership from the write side's view.
    await bob.event('membership.joined', (d) => d.conversationId === group && d.cause.conversationSeq === report.tombstoneSeq, 10_000);
    expect((await bob.send(group, 'back')).t).toBe('ack');
    await caughtUp();
    const members = () => rt.db.selectFrom('conversation_members').select('user_id').where('conversation_id', '=', group).orderBy('user_id').execute();
    expect((await members()).map((m) => m.user_id)).toEqual(['alice']);
    // A rebuild (unverified: the live rows still hold the removal) agrees with the write side.
    const rebuilt = await rebuild(rt, projectionByName(rt.subjects, 'read-model'), { maxDeliveries: 2, verify: false });
    expect(rebuilt.replayed.parked).toBe(0);
    expect((await members()).map((m) => m.user_id)).toEqual(['alice', 'bob']);
    expect(await history()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'back']);

    // Analytics counted it live (it came before its tombstone); ingesting the log again leaves it out.
    const analytics = p.platform.analytics!.projector;
    const tables = new AnalyticsTables(rt.clickhouse, p.config.clickhouse.database);
    const last = (await rt.nats.jsm.streams.info(rt.shards[0]!.stream)).state.last_seq;
    const counted = async () => Number((await tables.q<{ n: string }>(`SELECT count() AS n FROM {db}.events WHERE seq = ${forged}`))[0]!.n);
    await analytics.waitFor(last);
    expect(await counted()).toBe(1);
    await analytics.rebuild();
    await analytics.waitFor(last, 20_000);
    expect(await counted()).toBe(0);
    expect(await tables.q(`SELECT type, ref_seq FROM {db}.events WHERE type = 'log.tombstoned' AND ref_seq = ${forged}`)).toHaveLength(1);
  });
});
