import type { Subscription } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectors } from '../ops/cli/projectors.js';
import { projectionByName } from '../services/projector/projections.js';
import { rebuild } from '../services/projector/rebuild.js';
import { leftoverSchemas, tableHash } from '../services/projector/shadow.js';
import { cliIO } from './support/cli.js';
import { waitUntil } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { api, TestClient } from './support/ws-client.js';

/**
 * Operator replay over a real platform: messages sent by real WebSocket
 * clients, the read model rebuilt into shadow tables and swapped in while
 * the platform runs.
 */
let p: TestPlatform;
const clients: TestClient[] = [];
let group = '';
let direct = '';
const TEXTS = [
  '请问亚麻recruiter嘉宾，能给个内推吗？感谢',
  'Frank, thank you very much! I appreciate it!',
  '吹牛就没输过 😂',
  'שלום עולם',
  '👩‍👩‍👧‍👦 family call at 8?',
  'ok 👍',
];

async function connect(userId: string): Promise<TestClient> {
  const c = await TestClient.connect(p.ws, await p.token(userId));
  clients.push(c);
  return c;
}

function hashes() {
  const rt = p.platform.runtime;
  return Promise.all(projectionByName(rt.subjects, 'read-model').tables!.map(async (t) => [t, await tableHash(rt.db, 'public', t)] as const));
}

async function caughtUp(): Promise<void> {
  const runner = p.platform.projector!.runners[0]!;
  await waitUntil(async () => (await runner.lag()) === 0, 10_000, 'the projector to catch up');
}

beforeAll(async () => {
  // Room for a sender that does not pause, during the rebuild under traffic.
  p = await startTestPlatform({ env: { RATE_SENDS_PER_SECOND: '10000', RATE_FRAMES_PER_SECOND: '10000' } });
  const [alice, bob] = [await connect('alice'), await connect('bob')];
  group = (await api(p.http, 'POST', '/v1/conversations', await p.token('alice'), { kind: 'group', title: 'Replay 重放', members: ['bob', 'carol'] })).body
    .conversationId;
  direct = (await api(p.http, 'POST', '/v1/conversations', await p.token('bob'), { kind: 'direct', peer: 'alice' })).body.conversationId;
  await alice.joined(group);
  await alice.joined(direct);
  for (let i = 0; i < 24; i++) {
    const [who, conv] = i % 3 === 0 ? [bob, direct] : [i % 2 ? alice : bob, group];
    expect((await who.send(conv, `${TEXTS[i % TEXTS.length]} #${i}`)).t).toBe('ack');
  }
  await caughtUp();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await p?.stop();
});

describe('rebuilding the read model', () => {
  it('replays into shadow tables, verifies the content hash and swaps, with no side effects: nothing appended, published or pushed', async () => {
    const rt = p.platform.runtime;
    const carol = await connect('carol');
    await carol.next((f) => f.t === 'welcome');
    const framesBefore = clients.map((c) => c.frames.length);
    const before = await hashes();
    const historyBefore = await api(p.http, 'GET', `/v1/conversations/${group}/messages?limit=200`, await p.token('carol'));
    const lastSeq = (await rt.nats.jsm.streams.info(rt.shards[0]!.stream)).state.last_seq;
    const seen: string[] = [];
    const subs: Subscription[] = [rt.subjects.allLive, rt.subjects.allEvents].map((s) =>
      rt.nats.nc.subscribe(s, { callback: (_e, m) => void seen.push(m.subject) }),
    );

    const report = await rebuild(rt, projectionByName(rt.subjects, 'read-model'), { maxDeliveries: 3 });
    await rt.nats.nc.flush();
    await new Promise((r) => setTimeout(r, 200));
    subs.forEach((s) => s.unsubscribe());

    expect(report.comparison).not.toBeNull();
    for (const c of report.comparison!) expect(c, c.table).toMatchObject({ equal: true });
    expect(report.comparison!.find((c) => c.table === 'messages')!.liveRows).toBe(24);
    expect(report.replayed.parked).toBe(0);
    // The swapped-in tables are the rebuilt ones, identical by content to what was live.
    expect(await hashes()).toEqual(before);
    expect(await leftoverSchemas(rt.db)).toEqual([]);

    // No side effects: the log did not grow, nothing was published on stored or live subjects, no client got a frame.
    expect((await rt.nats.jsm.streams.info(rt.shards[0]!.stream)).state.last_seq).toBe(lastSeq);
    expect(seen).toEqual([]);
    expect(clients.map((c) => c.frames.length)).toEqual(framesBefore);

    const historyAfter = await api(p.http, 'GET', `/v1/conversations/${group}/messages?limit=200`, await p.token('carol'));
    expect(historyAfter).toEqual(historyBefore);
    // The live projector carries on into the new tables.
    const ack = await clients[0]!.send(group, 'after the swap 🔁');
    const page = await api(p.http, 'GET', `/v1/conversations/${group}/messages?after=${ack.result.seq}&limit=1`, await p.token('carol'));
    expect(page.body.messages[0].text).toBe('after the swap 🔁');
    await carol.message(group, 'after the swap 🔁');
  });

  it('swaps consistently while messages keep arriving during the rebuild', async () => {
    const alice = clients[0]!;
    let sending = true;
    let sent = 0;
    const refused: unknown[] = [];
    const traffic = (async () => {
      while (sending) {
        const ack = await alice.send(group, `during the rebuild ${sent}`);
        if (ack.t === 'ack') sent++;
        else refused.push(ack);
      }
    })();
    const report = await rebuild(p.platform.runtime, projectionByName(p.platform.runtime.subjects, 'read-model'), { maxDeliveries: 3, batchSize: 7 });
    sending = false;
    await traffic;
    expect(refused).toEqual([]);
    expect(sent).toBeGreaterThan(0);
    expect(report.comparison!.every((c) => c.equal)).toBe(true);
    await caughtUp();
    const during = await p.platform.runtime.db
      .selectFrom('messages')
      .select('text')
      .where('conversation_id', '=', group)
      .where('text', 'like', 'during the rebuild %')
      .execute();
    expect(during).toHaveLength(sent);
  });

  it('resets a projector to a position: the running projector reopens there and re-applies idempotently', async () => {
    await caughtUp();
    const before = await hashes();
    const runner = p.platform.projector!.runners[0]!;
    const at = runner.checkpoint;
    const out: string[] = [];
    await projectors.commands.reset!.run(['read-model', '--to-seq', '0'], cliIO(p, out));
    expect(JSON.parse(out.join('\n'))).toMatchObject({ projector: 'read-model', from: at, to: 0, consumerDeleted: true });
    // The row says 0 now (the runner's own figure changes only once it reopens): back at `at` means the log was applied again.
    const row = () => p.platform.runtime.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', 'read-model').executeTakeFirstOrThrow();
    await waitUntil(async () => Number((await row()).seq) >= at, 10_000, 'the projector to re-apply the log');
    await caughtUp();
    expect(await hashes()).toEqual(before);
  });

  it('lists every projector with checkpoint, lag and parked counts', async () => {
    await caughtUp();
    await waitUntil(async () => (await p.platform.notifier!.runner.lag()) === 0, 10_000, 'the notifier to catch up');
    const out: string[] = [];
    await projectors.commands.list!.run([], cliIO(p, out));
    const rows = JSON.parse(out.join('\n')) as { projector: string; checkpoint: number; rebuildable: boolean }[];
    const rm = rows.find((r) => r.projector === 'read-model');
    expect(rm).toMatchObject({ consumer: `${p.namespace}-read-model`, lag: 0, parked: 0, held: 0, epochMatchesStream: true, rebuildable: true });
    expect(rm!.checkpoint).toBeGreaterThan(0);
    // The notifier is listed like the read model; having side effects, it cannot be rebuilt.
    expect(rows.find((r) => r.projector === 'notifier')).toMatchObject({
      consumer: `${p.namespace}-notifier`,
      lag: 0,
      parked: 0,
      held: 0,
      epochMatchesStream: true,
      rebuildable: false,
    });
  });
});

describe('nothing unexpected was logged', () => {
  it('has no error log lines', () => {
    expect(p.errorLogs).toEqual([]);
  });
});
