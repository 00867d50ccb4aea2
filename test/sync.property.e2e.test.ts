import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, ParleyClient, type SendResult, type WebSocketFactory } from '../clients/sdk/index.js';
import { decodePosition, shardOf, type EntityKind, type EventFrame, type ShardPosition } from '../contracts/index.js';
import { pickFreePort } from '../ops/embedded/free-port.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

/**
 * Property: whatever the interleaving of sends, dropped connections, devices
 * going offline and a gateway restart, every device ends up with exactly the
 * events of its conversations and its user subject after its first position:
 * none lost, none twice, in log order per entity.
 *
 * It runs with the log in one stream and spread over two (STREAM_SHARDS=2).
 * Sequences are per shard: "after its first position" is per shard, an entity's
 * order is within its one shard, and every frame's `pos` must name its
 * entity's shard (a gateway stamping the wrong shard would make devices skip or
 * repeat events on resume, and is caught here directly).
 *
 * CI runs a fixed seed and a few schedules; for thousands:
 *   PARLEY_PBT_RUNS=2000 PARLEY_PBT_SEED=$RANDOM npx vitest run test/sync.property.e2e.test.ts
 */
const RUNS = Number(process.env.PARLEY_PBT_RUNS ?? 4);
const SEED = Number(process.env.PARLEY_PBT_SEED ?? 20261123);
const baseEnv = { RATE_SENDS_PER_SECOND: '10000', RATE_FRAMES_PER_SECOND: '10000', RATE_HTTP_PER_SECOND: '10000' };

interface Device {
  user: string;
  url: () => string;
  storage: MemoryStorage;
  client: ParleyClient | null;
  received: EventFrame[];
  /** Per shard, the sequence of the device's first synced position. */
  firstPosition: Map<number, number> | null;
  /** Every synced position the device was given (each must name every shard). */
  synced: ShardPosition[][];
}

interface Conversation {
  id: string;
  members: string[];
}

const action = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('send' as const), user: fc.nat(2), conv: fc.nat(1), count: fc.integer({ min: 1, max: 4 }) }), weight: 6 },
  { arbitrary: fc.record({ kind: fc.constant('drop' as const), device: fc.nat(5) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('offline' as const), device: fc.nat(5) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('online' as const), device: fc.nat(5) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('restart' as const) }), weight: 1 },
);

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) {
      if (process.env.PARLEY_PBT_DEBUG) return;
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const range = (n: number) => Array.from({ length: n }, (_, k) => k);
const distinctSorted = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);

// Both counts run RUNS schedules: a schedule at two shards takes about as long as at one.
describe.each([{ shards: 1 }, { shards: 2 }])('sync under random disconnects and a gateway restart, STREAM_SHARDS=$shards', ({ shards }) => {
  const env = { ...baseEnv, STREAM_SHARDS: String(shards) };
  let gw1: TestPlatform;
  let gw2: TestPlatform;
  let gw2Port: number;
  let run = 0;

  /** The second gateway on the first's namespace and database, always on the same port (clients reconnect to it). */
  function startSecondGateway(): Promise<TestPlatform> {
    return startTestPlatform({ namespace: gw1.namespace, databaseUrl: gw1.databaseUrl, withWorkers: false, nodeId: 2, env: { ...env, PORT: String(gw2Port) } });
  }

  beforeAll(async () => {
    gw1 = await startTestPlatform({ nodeId: 1, env });
    gw2Port = await pickFreePort();
    gw2 = await startSecondGateway();
  });
  afterAll(async () => {
    await gw2?.stop();
    await gw1?.stop();
  });

  /** `base`, or `base` with a suffix, whose user subject is on shard `k` (one shard: `base` itself). */
  function userOn(base: string, k: number): string {
    for (let i = 0; ; i++) {
      const id = i === 0 ? base : `${base}${i}`;
      if (shardOf(id, shards) === k) return id;
    }
  }

  function online(d: Device): Promise<void> {
    const client = new ParleyClient({
      url: d.url(),
      token: () => gw1.token(d.user),
      storage: d.storage,
      WebSocket: WebSocket as unknown as WebSocketFactory,
      backoff: { baseMs: 10, maxMs: 150 },
    });
    client.on('event', (e) => d.received.push(e));
    client.on('synced', (s) => {
      const parts = decodePosition(s.position) ?? [];
      d.synced.push(parts);
      d.firstPosition ??= new Map(parts.map((p) => [p.shard, p.seq]));
    });
    d.client = client;
    return client.connect();
  }

  async function logOf(entities: { kind: EntityKind; id: string }[]): Promise<{ key: string; shard: number; seq: number }[]> {
    const { subjects, store } = gw1.platform.runtime;
    const out: { key: string; shard: number; seq: number }[] = [];
    for (const { kind, id } of entities) {
      const subject = kind === 'conv' ? subjects.conv(id) : subjects.user(id);
      for await (const e of store.readSubject(subject, 0)) out.push({ key: `${kind}/${id}`, shard: subjects.shardOf(id), seq: e.seq });
    }
    return out;
  }

  it('every device holds exactly its events, in order, no loss, no duplicates', async () => {
    const { subjects, store } = gw1.platform.runtime;
    const epochs = store.shards.map((s) => s.epoch);
    expect(store.shards.map((s) => s.shard)).toEqual(range(shards));
    const shardsSeen = { users: new Set<number>(), convs: new Set<number>(), frames: new Set<number>() };

    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 8, maxLength: 22 }), async (schedule) => {
        run++;
        // Two shards: the owner and the direct peer on different shards (one shard: p<run>a, p<run>b, p<run>c).
        const users = [userOn(`p${run}a`, run % shards), userOn(`p${run}b`, (run + 1) % shards), `p${run}c`];
        const devices: Device[] = users.flatMap((user) => [
          { user, url: () => gw1.ws, storage: new MemoryStorage(), client: null, received: [], firstPosition: null, synced: [] },
          { user, url: () => `ws://127.0.0.1:${gw2Port}/v1/ws`, storage: new MemoryStorage(), client: null, received: [], firstPosition: null, synced: [] },
        ]);
        await Promise.all(devices.map(online));
        const owner = devices[0]!.client!;
        const convs: Conversation[] = [];
        const createGroup = async () => {
          const reply = await owner.command({ t: 'create', kind: 'group', title: `pbt ${run}`, members: users.slice(1) });
          const id = (reply as { conversationId: string }).conversationId;
          convs.push({ id, members: users });
          return id;
        };
        let group = await createGroup();
        const direct = ((await owner.command({ t: 'create', kind: 'direct', peer: users[1]! })) as { conversationId: string }).conversationId;
        convs.push({ id: direct, members: users.slice(0, 2) });
        // Group ids are minted by the server: with several shards, create groups until one lands on a shard the direct
        // conversation is not on (the earlier ones stay, conversations of all three users, and are checked as well).
        for (let i = 0; shards > 1 && subjects.shardOf(group) === subjects.shardOf(direct); i++) {
          if (i === 20) throw new Error('no group landed on another shard than the direct conversation');
          group = await createGroup();
        }
        for (const u of users) shardsSeen.users.add(subjects.shardOf(u));
        for (const c of [group, direct]) shardsSeen.convs.add(subjects.shardOf(c));
        expect(distinctSorted(users.map((u) => subjects.shardOf(u)))).toEqual(range(shards));
        expect(distinctSorted([group, direct].map((c) => subjects.shardOf(c)))).toEqual(range(shards));

        const targets = [group, direct];
        const sends: Promise<SendResult>[] = [];
        let n = 0;

        for (const step of schedule) {
          if (step.kind === 'send') {
            const conv = targets[step.conv]!;
            const senderIdx = conv === direct ? step.user % 2 : step.user;
            const device = devices.filter((d) => d.user === users[senderIdx]).find((d) => d.client) ?? devices[senderIdx * 2]!;
            if (!device.client) await online(device);
            for (let k = 0; k < step.count; k++) sends.push(device.client!.send(conv, `m${n++}`));
          } else if (step.kind === 'drop') {
            // The network drops: the SDK notices and reconnects by itself.
            (devices[step.device]!.client as unknown as { socket: { close(): void } | null } | null)?.socket?.close();
          } else if (step.kind === 'offline') {
            const d = devices[step.device]!;
            // Never take a sender's last device away with sends still queued on it.
            if (d.client && sends.length === 0) {
              d.client.close();
              d.client = null;
            }
          } else if (step.kind === 'online') {
            const d = devices[step.device]!;
            if (!d.client) await online(d);
          } else {
            await gw2.stop();
            gw2 = await startSecondGateway();
          }
          await new Promise((r) => setTimeout(r, 5));
        }
        for (const d of devices) if (!d.client) await online(d);
        await Promise.all(sends);

        for (const d of devices) {
          const entities = [
            { kind: 'user' as const, id: d.user },
            ...convs.filter((c) => c.members.includes(d.user)).map((c) => ({ kind: 'conv' as const, id: c.id })),
          ];
          // Every synced position names every shard, with its stream's epoch.
          for (const parts of d.synced) expect(parts.map((p) => [p.shard, p.epoch])).toEqual(range(shards).map((k) => [k, epochs[k]]));
          // "After the first position" is per shard: an event is after it when its seq passes its own shard's entry.
          const pastFirst = (shard: number, seq: number) => seq > d.firstPosition!.get(shard)!;
          const got = () => d.received.filter((e) => pastFirst(subjects.shardOf(e.entity.id), e.seq));
          let expected: { key: string; shard: number; seq: number }[] = [];
          await until(
            async () => {
              expected = (await logOf(entities)).filter((e) => pastFirst(e.shard, e.seq));
              return got().length >= expected.length;
            },
            process.env.PARLEY_PBT_DEBUG ? 3000 : 15_000,
            `device of ${d.user} to receive everything`,
          );
          const received = got();
          if (process.env.PARLEY_PBT_DEBUG) {
            const have = new Set(received.map((e) => `${e.entity.kind}/${e.entity.id}@${e.seq}`));
            const missing = expected.filter((e) => !have.has(`${e.key}@${e.seq}`));
            process.stderr.write(
              `device ${d.user}@${d.url()} first=${JSON.stringify([...d.firstPosition!])} missing=${JSON.stringify(missing)} dupes=${received.length - have.size}\n`,
            );
          }
          // Each frame's pos is exactly its own event's place: its entity's shard, that stream's epoch, its seq.
          const misplaced = d.received.filter((e) => {
            const k = subjects.shardOf(e.entity.id);
            return JSON.stringify(decodePosition(e.pos)) !== JSON.stringify([{ shard: k, epoch: epochs[k], seq: e.seq }]);
          });
          expect(misplaced.map((e) => ({ entity: e.entity, seq: e.seq, pos: decodePosition(e.pos) }))).toEqual([]);
          for (const e of d.received) shardsSeen.frames.add(subjects.shardOf(e.entity.id));
          const perEntity = (list: { key: string; seq: number }[]) => {
            const m = new Map<string, number[]>();
            for (const x of list) m.set(x.key, [...(m.get(x.key) ?? []), x.seq]);
            return Object.fromEntries([...m].sort());
          };
          // The log's order per entity is its subject's order (readSubject), within the entity's one shard.
          expect(perEntity(received.map((e) => ({ key: `${e.entity.kind}/${e.entity.id}`, seq: e.seq })))).toEqual(perEntity(expected));
        }
        for (const d of devices) d.client?.close();
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // The schedules spread users, conversations and delivered frames over every shard.
    expect([[...shardsSeen.users].sort(), [...shardsSeen.convs].sort(), [...shardsSeen.frames].sort()]).toEqual([range(shards), range(shards), range(shards)]);
  });
});
