import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStorage, ParleyClient, type SendResult, type WebSocketFactory } from '../clients/sdk/index.js';
import { positionSeq, type EventFrame } from '../contracts/index.js';
import { pickFreePort } from '../ops/embedded/free-port.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

/**
 * Property: whatever the interleaving of sends, dropped connections, devices
 * going offline and a gateway restart, every device ends up with exactly the
 * events of its conversations and its user subject after its first position:
 * none lost, none twice, in log order per entity.
 *
 * CI runs a fixed seed and a few schedules; for thousands:
 *   PARLEY_PBT_RUNS=2000 PARLEY_PBT_SEED=$RANDOM npx vitest run test/sync.property.e2e.test.ts
 */
const RUNS = Number(process.env.PARLEY_PBT_RUNS ?? 4);
const SEED = Number(process.env.PARLEY_PBT_SEED ?? 20261123);
const env = { RATE_SENDS_PER_SECOND: '10000', RATE_FRAMES_PER_SECOND: '10000', RATE_HTTP_PER_SECOND: '10000' };

let gw1: TestPlatform;
let gw2: TestPlatform;
let gw2Port: number;
let run = 0;

interface Device {
  user: string;
  url: () => string;
  storage: MemoryStorage;
  client: ParleyClient | null;
  received: EventFrame[];
  firstPosition: number | null;
}

const action = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('send' as const), user: fc.nat(2), conv: fc.nat(1), count: fc.integer({ min: 1, max: 4 }) }), weight: 6 },
  { arbitrary: fc.record({ kind: fc.constant('drop' as const), device: fc.nat(5) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('offline' as const), device: fc.nat(5) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('online' as const), device: fc.nat(5) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('restart' as const) }), weight: 1 },
);

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
    d.firstPosition ??= positionSeq(s.position);
  });
  d.client = client;
  return client.connect();
}

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

async function logOf(subjects: string[]): Promise<{ subject: string; seq: number }[]> {
  const out: { subject: string; seq: number }[] = [];
  for (const s of subjects) for await (const e of gw1.platform.runtime.store.readSubject(s, 0)) out.push({ subject: s, seq: e.seq });
  return out;
}

describe('sync under random disconnects and a gateway restart', () => {
  it('every device holds exactly its events, in order, no loss, no duplicates', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 8, maxLength: 22 }), async (schedule) => {
        run++;
        const users = ['a', 'b', 'c'].map((u) => `p${run}${u}`);
        const devices: Device[] = users.flatMap((user, i) => [
          { user, url: () => gw1.ws, storage: new MemoryStorage(), client: null, received: [], firstPosition: null },
          { user, url: () => `ws://127.0.0.1:${gw2Port}/v1/ws`, storage: new MemoryStorage(), client: null, received: [], firstPosition: null, i },
        ]);
        await Promise.all(devices.map(online));
        const owner = devices[0]!.client!;
        const group = ((await owner.command({ t: 'create', kind: 'group', title: `pbt ${run}`, members: users.slice(1) })) as { conversationId: string })
          .conversationId;
        const direct = ((await owner.command({ t: 'create', kind: 'direct', peer: users[1]! })) as { conversationId: string }).conversationId;
        const convs = [group, direct];
        const sends: Promise<SendResult>[] = [];
        let n = 0;

        for (const step of schedule) {
          if (step.kind === 'send') {
            const conv = convs[step.conv]!;
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
          const subjects = [
            gw1.platform.runtime.subjects.user(d.user),
            ...convs.filter((c) => c !== direct || d.user !== users[2]).map((c) => gw1.platform.runtime.subjects.conv(c)),
          ];
          let expected: { subject: string; seq: number }[] = [];
          await until(
            async () => {
              expected = (await logOf(subjects)).filter((e) => e.seq > d.firstPosition!);
              return d.received.filter((e) => e.seq > d.firstPosition!).length >= expected.length;
            },
            process.env.PARLEY_PBT_DEBUG ? 3000 : 15_000,
            `device of ${d.user} to receive everything`,
          );
          const entity = (s: string) => s.split('.').slice(2).join('/');
          const got = d.received.filter((e) => e.seq > d.firstPosition!);
          if (process.env.PARLEY_PBT_DEBUG) {
            const have = new Set(got.map((e) => e.seq));
            const missing = expected.filter((e) => !have.has(e.seq));
            process.stderr.write(`device ${d.user}@${d.url()} first=${d.firstPosition} missing=${JSON.stringify(missing)} dupes=${got.length - have.size}\n`);
          }
          const perEntity = (list: { key: string; seq: number }[]) => {
            const m = new Map<string, number[]>();
            for (const x of list) m.set(x.key, [...(m.get(x.key) ?? []), x.seq]);
            return Object.fromEntries([...m].sort());
          };
          expect(perEntity(got.map((e) => ({ key: `${e.entity.kind}/${e.entity.id}`, seq: e.seq })))).toEqual(
            perEntity(expected.sort((x, y) => x.seq - y.seq).map((e) => ({ key: entity(e.subject), seq: e.seq }))),
          );
        }
        for (const d of devices) d.client?.close();
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  });
});
