import { RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { shardOf, subjectsFor } from '../contracts/index.js';
import { loadConfig } from '../services/runtime/config.js';
import { createLogger } from '../services/observability/logger.js';
import { connectNats, type NatsHandles } from '../services/event-log/connection.js';
import { NatsSetupRefused } from '../services/event-log/refusal.js';
import { shardCountProblem, type ExistingShard } from '../services/event-log/shard-layout.js';
import { eventStreamConfig } from '../services/event-log/streams.js';
import { created } from './support/events.js';
import { startTestPlatform, uniqueNamespace, type TestPlatform } from './support/platform.js';

/**
 * STREAM_SHARDS is fixed for the life of a deployment (services/event-log/shard-layout.ts):
 * an entity's shard is its id's hash modulo the count, so a start with another count than
 * the one the deployment's streams hold events under is refused with one line, before
 * anything is created.
 */
const quiet = createLogger({ level: 'silent' });
let nats: NatsHandles;
const started: TestPlatform[] = [];

beforeAll(async () => {
  nats = await connectNats(inject('natsUrl'), 'stream-shards-test', quiet);
});
afterAll(async () => {
  for (const p of started) await p.stop().catch(() => undefined);
  await nats.nc.drain();
});

/** A stream named as shard `shard` of `namespace` would be, on subjects no other shard uses. */
async function addShardStream(namespace: string, shard: number): Promise<string> {
  const name = subjectsFor(namespace).stream(shard);
  await nats.jsm.streams.add({ name, subjects: [`${namespace}.ev.${shard}.>`], retention: RetentionPolicy.Limits, storage: StorageType.Memory });
  return name;
}

describe('STREAM_SHARDS in the configuration', () => {
  it('is 1 by default, 1 to 64 otherwise; nonsense is refused', () => {
    expect(loadConfig({}).nats.shards).toBe(1);
    expect(loadConfig({ STREAM_SHARDS: '1' }).nats.shards).toBe(1);
    expect(loadConfig({ STREAM_SHARDS: '2' }).nats.shards).toBe(2);
    expect(loadConfig({ STREAM_SHARDS: '64' }).nats.shards).toBe(64);
    for (const bad of ['0', '-1', '1.5', 'two', '65']) expect(() => loadConfig({ STREAM_SHARDS: bad }), bad).toThrow(/STREAM_SHARDS/);
  });
});

describe('the shard count of a deployment', () => {
  const used = (shard: number, lastSeq = 5): ExistingShard => ({ shard, stream: `parley_events_${shard}`, lastSeq });
  const empty = (shard: number): ExistingShard => used(shard, 0);

  it('may be anything on a fresh deployment and must match the streams that hold events otherwise', () => {
    const table: [configured: number, existing: ExistingShard[], refused: RegExp | null][] = [
      [1, [], null],
      [4, [], null],
      [1, [used(0)], null],
      [3, [used(0), used(1), empty(2)], null],
      // Streams that never held an event: a fresh deployment, any count.
      [2, [empty(0)], null],
      [1, [empty(0), empty(1), empty(2)], null],
      [2, [used(0)], /^STREAM_SHARDS=2 does not match this deployment: its log has 1 stream shard \(events in parley_events_0\)/],
      [1, [used(0), used(1)], /^STREAM_SHARDS=1 does not match this deployment: its log has 2 stream shards \(events in parley_events_0, parley_events_1\)/],
      [1, [used(0), empty(1)], /^STREAM_SHARDS=1 does not match this deployment: its log has 2 stream shards/],
      [4, [used(0), used(1)], /^STREAM_SHARDS=4 does not match/],
    ];
    for (const [configured, existing, refused] of table) {
      const problem = shardCountProblem(configured, existing);
      const label = `${configured} over ${JSON.stringify(existing)}`;
      if (refused === null) expect(problem, label).toBeNull();
      else {
        expect(problem, label).toMatch(refused);
        expect(problem, label).not.toContain('\n');
      }
    }
  });

  it('a start with a different count than an existing deployment holds events under is refused with one line and creates nothing', async () => {
    const namespace = uniqueNamespace('shards');
    // A deployment whose log was spread over two shards, both holding events.
    const shard1 = await addShardStream(namespace, 1);
    await nats.js.publish(`${namespace}.ev.1.conv.g_elsewhere`, '{}');
    const refused = await startTestPlatform({ namespace, withWorkers: false }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NatsSetupRefused);
    expect((refused as Error).message).toMatch(
      /^STREAM_SHARDS=1 does not match this deployment: its log has 2 stream shards \(events in .*_events_1\); .*docs\/operations\.md, "Stream shards"\)$/,
    );
    // Refused before provisioning: shard 0's stream was not created next to the foreign layout.
    await expect(nats.jsm.streams.info(subjectsFor(namespace).stream(0))).rejects.toThrow(/not found/i);
    await nats.jsm.streams.delete(shard1);
  });

  it('a deployment that ran with one shard restarts with one; streams that never held an event count as fresh', async () => {
    const first = await startTestPlatform({ withWorkers: false });
    started.push(first);
    const { store, subjects } = first.platform.runtime;
    await store.append(subjects.conv('g_sharded'), created('g_sharded', ['ann']), { expectedLastSubjectSeq: 0 });
    await first.stop();
    started.pop();
    const again = await startTestPlatform({ namespace: first.namespace, databaseUrl: first.databaseUrl, withWorkers: false });
    started.push(again);
    expect(again.platform.runtime.shards.map((s) => s.shard)).toEqual([0]);
    expect(await again.platform.runtime.store.lastSubjectSeq(subjects.conv('g_sharded'))).toBeGreaterThan(0);

    const fresh = uniqueNamespace('shards');
    const unused = await addShardStream(fresh, 1);
    const freshStart = await startTestPlatform({ namespace: fresh, withWorkers: false });
    started.push(freshStart);
    expect(freshStart.platform.runtime.shards).toHaveLength(1);
    await nats.jsm.streams.delete(unused);
  });
});

describe('a deployment of two shards', () => {
  it('creates a stream per shard, routes each entity to its shard, restarts with two and refuses one', async () => {
    const first = await startTestPlatform({ withWorkers: false, env: { STREAM_SHARDS: '2' } });
    started.push(first);
    const { store, subjects } = first.platform.runtime;
    expect(first.platform.runtime.shards.map((s) => s.stream)).toEqual([subjects.stream(0), subjects.stream(1)]);
    const ids = Array.from({ length: 20 }, (_, i) => `g_sh${i}`);
    const onZero = ids.find((id) => shardOf(id, 2) === 0)!;
    const onOne = ids.find((id) => shardOf(id, 2) === 1)!;
    const a = await store.append(subjects.conv(onZero), created(onZero, ['ann']), { expectedLastSubjectSeq: 0 });
    const b = await store.append(subjects.conv(onOne), created(onOne, ['ann']), { expectedLastSubjectSeq: 0 });
    // Both streams start at 1: sequences are per shard.
    expect([a.seq, b.seq]).toEqual([1, 1]);
    expect((await nats.jsm.streams.info(subjects.stream(1))).state.last_seq).toBe(1);
    expect((await store.getOn(subjects.conv(onOne), 1))?.subject).toBe(`${first.namespace}.ev.1.conv.${onOne}`);
    expect((await store.getOn(subjects.conv(onZero), 1))?.subject).toBe(`${first.namespace}.ev.conv.${onZero}`);
    await first.stop();
    started.pop();

    const again = await startTestPlatform({ namespace: first.namespace, databaseUrl: first.databaseUrl, withWorkers: false, env: { STREAM_SHARDS: '2' } });
    started.push(again);
    expect(await again.platform.runtime.store.lastSubjectSeq(subjects.conv(onOne))).toBe(1);
    await again.stop();
    started.pop();
    const refused = await startTestPlatform({ namespace: first.namespace, databaseUrl: first.databaseUrl, withWorkers: false }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NatsSetupRefused);
    expect((refused as Error).message).toMatch(/^STREAM_SHARDS=1 does not match this deployment: its log has 2 stream shards/);
  });
});

describe('the streams of several shards', () => {
  const settings = { maxAgeDays: 1, duplicateWindowSeconds: 60, maxMsgBytes: 1 << 16 };

  it('shard 0 keeps the one-shard subjects; every shard stores disjoint subjects and republishes into one live space', async () => {
    const namespace = uniqueNamespace('shards');
    const subjects = subjectsFor(namespace);
    const zero = eventStreamConfig(subjects, 0, settings);
    expect(zero).toMatchObject({
      name: `${namespace}_events_0`,
      subjects: [`${namespace}.ev.conv.*`, `${namespace}.ev.user.*`],
      republish: { src: `${namespace}.ev.>`, dest: `${namespace}.live.>` },
    });
    const one = eventStreamConfig(subjects, 1, settings);
    const two = eventStreamConfig(subjects, 2, settings);
    for (const c of [zero, one, two]) await nats.jsm.streams.add({ ...c, storage: StorageType.Memory });
    try {
      const live: string[] = [];
      const sub = nats.nc.subscribe(subjects.allLive, {
        callback: (_e, m) => {
          live.push(`${m.subject} ${m.headers?.get('Nats-Stream')} ${m.headers?.get('Nats-Sequence')}/${m.headers?.get('Nats-Last-Sequence')}`);
        },
      });
      await nats.nc.flush();
      const acks = [];
      for (const subject of [`${namespace}.ev.conv.g_a`, `${namespace}.ev.1.conv.g_b`, `${namespace}.ev.1.conv.g_b`, `${namespace}.ev.2.user.u_c`])
        acks.push(await nats.js.publish(subject, '{}'));
      expect(acks.map((a) => `${a.stream}:${a.seq}`)).toEqual([`${zero.name}:1`, `${one.name}:1`, `${one.name}:2`, `${two.name}:1`]);
      const deadline = Date.now() + 5000;
      while (live.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      sub.unsubscribe();
      expect(live).toEqual([
        `${namespace}.live.conv.g_a ${zero.name} 1/0`,
        `${namespace}.live.conv.g_b ${one.name} 1/0`,
        `${namespace}.live.conv.g_b ${one.name} 2/1`,
        `${namespace}.live.user.u_c ${two.name} 1/0`,
      ]);
    } finally {
      for (const c of [zero, one, two]) await nats.jsm.streams.delete(c.name).catch(() => undefined);
    }
  });
});
