import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOf, type UserEvent } from '../contracts/index.js';
import type { CliIO } from '../ops/cli/command.js';
import { main } from '../ops/cli/main.js';
import { membershipConsumerName } from '../services/membership/reactor.js';
import { AnalyticsTables } from './support/analytics.js';
import { sent, waitUntil } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { api } from './support/ws-client.js';

/**
 * The workers and operator tools that read the whole log, with the log on two
 * shard streams (STREAM_SHARDS=2): the membership reactor derives user events
 * across shards (a conversation on one, its members on the other), analytics
 * ingests both streams (whose sequences both start at 1) without a collision,
 * and the CLI tombstones an event of shard 1.
 */
const SHARDS = 2;
let p: TestPlatform;
let tables: AnalyticsTables;
/** A conversation on each shard, each created by (and with) users of the other shard only. */
const conv: { id: string; creator: string; member: string }[] = [];

/** `count` user ids of `shard`, starting with `prefix`. */
function usersOn(shard: number, prefix: string, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) if (shardOf(`${prefix}${i}`, SHARDS) === shard) out.push(`${prefix}${i}`);
  return out;
}

async function command(userId: string, body: Record<string, unknown>): Promise<unknown> {
  const r = await api(p.http, 'POST', '/v1/commands', await p.token(userId), body);
  if (r.status !== 200) throw new Error(`${userId} ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Creates conversations (ids minted by the server) until one lands on `shard`. */
async function conversationOn(shard: number, creator: string, member: string): Promise<string> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const r = await api(p.http, 'POST', '/v1/conversations', await p.token(creator), { kind: 'group', title: `on ${shard}`, members: [member] });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = r.body.conversationId as string;
    if (p.platform.runtime.subjects.shardOf(id) === shard) return id;
  }
  throw new Error(`no conversation landed on shard ${shard}`);
}

async function userEvents(userId: string): Promise<{ seq: number; event: UserEvent }[]> {
  const rt = p.platform.runtime;
  const out: { seq: number; event: UserEvent }[] = [];
  for await (const s of rt.store.readSubject(rt.subjects.user(userId), 0)) out.push({ seq: s.seq, event: s.event as UserEvent });
  return out;
}

async function membershipOf(userId: string, conversationId: string) {
  return (await userEvents(userId)).filter(
    (e) => (e.event.type === 'membership.joined' || e.event.type === 'membership.left') && e.event.data.conversationId === conversationId,
  );
}

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { NATS_URL: p.natsUrl, DATABASE_URL: p.databaseUrl, PARLEY_NAMESPACE: p.namespace, LOG_LEVEL: 'warn', STREAM_SHARDS: String(SHARDS) },
    signal: new AbortController().signal,
  };
  const code = await main(['--json', ...argv], io);
  return { code, out, err };
}

/** Each shard's stream's last sequence and message count. */
async function streamStates(): Promise<{ last: number; messages: number }[]> {
  const rt = p.platform.runtime;
  return Promise.all(
    rt.shards.map(async (s) => {
      const { state } = await rt.nats.jsm.streams.info(s.stream);
      return { last: state.last_seq, messages: state.messages };
    }),
  );
}

/** Until both streams stop growing (derived events included) and analytics has ingested both. */
async function settled(): Promise<{ last: number; messages: number }[]> {
  for (;;) {
    const before = await streamStates();
    await p.platform.analytics!.projector.waitForLog(15_000);
    await new Promise((r) => setTimeout(r, 200));
    const after = await streamStates();
    if (after.every((s, k) => s.last === before[k]!.last)) return after;
  }
}

beforeAll(async () => {
  p = await startTestPlatform({ env: { STREAM_SHARDS: String(SHARDS) } });
  tables = new AnalyticsTables(p.platform.runtime.clickhouse, p.config.clickhouse.database);
  const [a0, b0] = usersOn(0, 'zero', 2);
  const [a1, b1] = usersOn(1, 'one', 2);
  // On shard 0, everyone in it on shard 1; on shard 1, everyone on shard 0.
  conv.push({ id: await conversationOn(0, a1!, b1!), creator: a1!, member: b1! });
  conv.push({ id: await conversationOn(1, a0!, b0!), creator: a0!, member: b0! });
});

afterAll(async () => {
  await p?.stop();
});

describe('the membership reactor over two shards', () => {
  it('derives membership.joined and membership.left on the users’ shards, from conversations on the other shard', async () => {
    const rt = p.platform.runtime;
    for (const [k, c] of conv.entries()) {
      expect(rt.subjects.shardOf(c.id)).toBe(k);
      for (const user of [c.creator, c.member]) {
        expect(rt.subjects.shardOf(user)).toBe(1 - k);
        await waitUntil(async () => (await membershipOf(user, c.id)).length === 1, 10_000, `${user} joined ${c.id}`);
        const [joined] = await membershipOf(user, c.id);
        expect(joined!.event).toMatchObject({ type: 'membership.joined', data: { conversationId: c.id, kind: 'group' } });
        // The cause is a sequence of the conversation's shard: the creation there.
        const cause = await rt.store.getOn(rt.subjects.conv(c.id), (joined!.event.data as { cause: { conversationSeq: number } }).cause.conversationSeq);
        expect(cause).toMatchObject({ subject: rt.subjects.conv(c.id), event: { type: 'conversation.created' } });
      }
      await command(c.creator, { t: 'remove_member', conversationId: c.id, userId: c.member });
      await waitUntil(async () => (await membershipOf(c.member, c.id)).length === 2, 10_000, `${c.member} left ${c.id}`);
      expect((await membershipOf(c.member, c.id))[1]!.event.type).toBe('membership.left');
    }
    // One durable consumer per shard, shard 0 under the one-shard name; both caught up.
    const names = [`${p.namespace}-membership`, `${p.namespace}-membership_s1`];
    expect(rt.shards.map((s) => membershipConsumerName(p.namespace, s.shard))).toEqual(names);
    const lag = async (k: number) => {
      const info = await rt.nats.jsm.consumers.info(rt.shards[k]!.stream, names[k]!);
      return info.num_pending + info.num_ack_pending;
    };
    await waitUntil(async () => (await lag(0)) === 0 && (await lag(1)) === 0, 10_000, 'membership consumers caught up');
  });
});

describe('analytics over two shards', () => {
  it('ingests both streams, whose sequences overlap, each event once', async () => {
    const rt = p.platform.runtime;
    await rt.store.append(rt.subjects.conv(conv[1]!.id), sent(conv[1]!.id, conv[1]!.creator, 'on shard 1'));
    const states = await settled();
    const perShard = await tables.q<{ shard: number; n: string; lo: string; hi: string }>(
      'SELECT shard, count() AS n, min(seq) AS lo, max(seq) AS hi FROM {db}.events GROUP BY shard ORDER BY shard',
    );
    expect(perShard.map((r) => [Number(r.shard), Number(r.n), Number(r.lo), Number(r.hi)])).toEqual(states.map((s, k) => [k, s.messages, 1, s.last]));
    // Both shards have rows at sequence 1: the same number, two events.
    expect(await tables.q('SELECT toUInt16(shard) AS shard, type FROM {db}.events WHERE seq = 1 ORDER BY shard')).toHaveLength(2);
    const [dup] = await tables.q<{ n: string; u: string }>('SELECT count() AS n, uniqExact(shard, epoch, seq) AS u FROM {db}.events');
    expect(dup!.n).toBe(dup!.u);
    // A membership event on a user's subject (shard 1) points at the creation on the conversation's shard (0).
    const refs = await tables.q<{ shard: number; ref_shard: number; target: string }>(
      `SELECT toUInt16(j.shard) AS shard, toUInt16(j.ref_shard) AS ref_shard, c.type AS target FROM {db}.events AS j
       INNER JOIN {db}.events AS c ON c.shard = j.ref_shard AND c.seq = j.ref_seq AND c.conversation_id = j.conversation_id
       WHERE j.type = 'membership.joined' AND j.conversation_id = '${conv[0]!.id}' AND j.entity_id = '${conv[0]!.member}'`,
    );
    expect(refs).toEqual([{ shard: 1, ref_shard: 0, target: 'conversation.created' }]);
    // A checkpoint per shard, under the one-shard consumer name.
    const checkpoints = await tables.q<{ consumer: string; shard: number }>(
      'SELECT consumer, toUInt16(shard) AS shard FROM {db}.ingest_checkpoints FINAL ORDER BY shard',
    );
    expect(checkpoints).toEqual([
      { consumer: `${p.namespace}-analytics`, shard: 0 },
      { consumer: `${p.namespace}-analytics`, shard: 1 },
    ]);
  });
});

describe('the operator CLI over two shards', () => {
  it('tombstones an event of shard 1 named by --shard or --stream, and reads each shard', async () => {
    const rt = p.platform.runtime;
    const c = conv[1]!;
    const subject = rt.subjects.conv(c.id);
    expect(subject).toBe(`${p.namespace}.ev.1.conv.${c.id}`);
    const { seq } = await rt.store.append(subject, sent(c.id, c.creator, 'to be tombstoned'));
    // The same sequence on shard 0 is another event (or none): without --shard the command means shard 0.
    const r = await cli('log', 'tombstone', '--shard', '1', '--seq', String(seq), '--reason', 'test of shard 1', '--wait-ms', '2000');
    expect(r.code, r.err.join('\n')).toBe(0);
    const report = JSON.parse(r.out[0]!);
    expect(report).toMatchObject({ stream: rt.shards[1]!.stream, seq, subject, eventType: 'message.sent' });
    // Appended on the same subject, in shard 1.
    expect(await rt.store.getOn(subject, report.tombstoneSeq)).toMatchObject({
      subject,
      event: { type: 'log.tombstoned', data: { stream: rt.shards[1]!.stream, seq } },
    });
    const again = await cli('log', 'tombstone', '--stream', rt.shards[1]!.stream, '--seq', String(seq), '--reason', 'again');
    expect(again.code, again.err.join('\n')).toBe(0);
    expect(JSON.parse(again.out[0]!)).toMatchObject({ alreadyTombstoned: true, tombstoneSeq: report.tombstoneSeq });
    const list = await cli('log', 'tombstones', '--shard', '1');
    expect(list.out.map((l) => JSON.parse(l))).toMatchObject([{ stream: rt.shards[1]!.stream, seq, subject }]);
    expect((await cli('log', 'tombstone', '--shard', '2', '--seq', '1', '--reason', 'x')).code).toBe(2);
    expect((await cli('log', 'tombstone', '--stream', 'other_events_1', '--seq', '1', '--reason', 'x')).code).toBe(2);

    // Analytics has the tombstone on shard 1, pointing at shard 1's sequence.
    await settled();
    expect(
      await tables.q(
        `SELECT toUInt16(shard) AS shard, toUInt16(ref_shard) AS ref_shard, toUInt32(ref_seq) AS ref_seq FROM {db}.events WHERE type = 'log.tombstoned'`,
      ),
    ).toEqual([{ shard: 1, ref_shard: 1, ref_seq: seq }]);

    // The log read per shard: one entity on its own shard, a wildcard on both, each line with its shard.
    const tail = await cli('streams', 'export', c.id);
    expect(tail.code, tail.err.join('\n')).toBe(0);
    const lines = tail.out.map((l) => JSON.parse(l));
    expect(lines.every((l) => l.shard === 1 && l.subject === subject)).toBe(true);
    expect(lines.at(-1)).toMatchObject({ seq: report.tombstoneSeq, event: { type: 'log.tombstoned' } });
    const all = await cli('streams', 'tail', 'conv.*', '--all');
    expect(new Set(all.out.map((l) => JSON.parse(l).shard))).toEqual(new Set([0, 1]));
    expect((await cli('streams', 'tail', 'conv.*', '--from-seq', '1')).code).toBe(2);
    const info = await cli('streams', 'info');
    expect(JSON.parse(info.out[0]!).map((s: { stream: string }) => s.stream)).toEqual(rt.shards.map((s) => s.stream));
    const consumers = await cli('streams', 'consumers', '--shard', '1');
    expect(JSON.parse(consumers.out[0]!).map((x: { name: string }) => x.name)).toContain(`${p.namespace}-membership_s1`);
  });
});
