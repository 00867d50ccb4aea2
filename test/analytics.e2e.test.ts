import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ParleyEvent } from '../contracts/index.js';
import { AnalyticsProjector } from '../services/analytics/projector.js';
import { AnalyticsProbe } from './support/analytics.js';
import { appendAll, created, sent, waitUntil } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { TestClient } from './support/ws-client.js';

/**
 * The analytics projector against the real log and embedded chDB: exact
 * counts through failures, restarts and redelivery, rollups equal to the raw
 * table, rebuild from the log, and delivery timing from a real gateway.
 * Reports and SQL access are in analytics-access.e2e.test.ts.
 */
let p: TestPlatform;
let a: AnalyticsProbe;
const DAY = 86_400_000;
const id = () => randomBytes(4).toString('hex');
/** Expected error lines: the injected ClickHouse failure. */
const expectedErrors = /analytics batch insert failed/;

beforeAll(async () => {
  p = await startTestPlatform();
  a = new AnalyticsProbe(p);
});

afterAll(async () => {
  await p?.stop();
});

async function expectLogEqualsClickHouse(): Promise<void> {
  await a.settled();
  expect(await a.clickhouseCounts()).toEqual(await a.logCounts());
  await a.expectRollupsMatchRaw();
}

describe('the analytics projector', () => {
  it('ingests every event of the log exactly once; rollups equal aggregates over the raw table', async () => {
    const now = Date.now();
    const [g1, g2] = [`g_a${id()}`, `g_b${id()}`];
    const events: ParleyEvent[] = [
      created(g1, ['ana', 'ben', 'cai'], now - 9 * DAY),
      created(g2, ['ben', 'dan'], now - 3 * DAY),
      ...Array.from({ length: 30 }, (_, i) =>
        sent(g1, ['ana', 'ben', 'cai'][i % 3]!, `第${i}条 message 👋🏽 ${'x'.repeat(i)}`, now - (9 - (i % 10)) * DAY + i * 60_000),
      ),
      ...Array.from({ length: 12 }, (_, i) => sent(g2, i % 2 ? 'ben' : 'dan', `hi ${i} مرحبا`, now - 3 * DAY + i * 1000)),
    ];
    await appendAll(p.platform.runtime, events);
    await expectLogEqualsClickHouse();
    // Text never reaches ClickHouse: only its length.
    const [row] = await a.q<{ c: string; b: string }>(
      `SELECT text_chars AS c, text_bytes AS b FROM {db}.events WHERE type = 'message.sent' AND conversation_id = '${g2}' ORDER BY seq LIMIT 1`,
    );
    expect(row).toEqual({ c: 'hi 0 مرحبا'.length, b: Buffer.byteLength('hi 0 مرحبا') });
  });

  it('retries a batch that failed halfway identically; a restart mid-batch and the redelivery it forces count nothing twice', async () => {
    const [ok, bad] = [`g_ok${id()}`, `g_bad${id()}`];
    // A view that fails every insert containing `bad`: the raw part lands first, other views may, this one never.
    await a.command('CREATE TABLE {db}.fault_sink (x UInt8) ENGINE = Null');
    await a.command(`CREATE MATERIALIZED VIEW {db}.fault_mv TO {db}.fault_sink AS SELECT throwIf(conversation_id = '${bad}') AS x FROM {db}.events`);
    const [badSeq] = await appendAll(p.platform.runtime, [sent(bad, 'eve', 'the poisoned one')]);
    await appendAll(
      p.platform.runtime,
      Array.from({ length: 10 }, (_, i) => sent(ok, 'fay', `after ${i}`)),
    );
    await waitUntil(() => p.errorLogs.some((l) => expectedErrors.test(l)), 10_000, 'a failed insert');
    // The first attempt landed in part: the raw row is there, the checkpoint is not past it.
    expect(await a.q(`SELECT toUInt32(count()) AS n FROM {db}.events WHERE conversation_id = '${bad}'`)).toEqual([{ n: 1 }]);
    expect(a.analytics.projector.insertedThrough).toBeLessThan(badSeq!);

    // More events arrive while the batch is being retried, then the projector stops in the middle of it all.
    await appendAll(
      p.platform.runtime,
      Array.from({ length: 5 }, (_, i) => sent(ok, 'gus', `during ${i}`)),
    );
    await a.analytics.projector.stop();
    await a.command('DROP VIEW {db}.fault_mv');
    await a.command('DROP TABLE {db}.fault_sink');
    await a.analytics.projector.start();
    await expectLogEqualsClickHouse();
    expect(await a.q(`SELECT toUInt32(sum(messages)) AS n FROM {db}.messages_by_minute WHERE conversation_id = '${bad}'`)).toEqual([{ n: 1 }]);

    // Every start redelivers the last recorded batch: a second restart re-inserts it, changing nothing.
    const before = await a.clickhouseCounts();
    await a.analytics.projector.stop();
    await a.analytics.projector.start();
    await appendAll(p.platform.runtime, [sent(ok, 'fay', 'one more')]);
    await expectLogEqualsClickHouse();
    expect((await a.clickhouseCounts())['message.sent']).toBe(before['message.sent']! + 1);
  });

  it('rebuilds ClickHouse from the log with the same tables', async () => {
    await a.settled();
    const snapshot = async () => ({
      counts: await a.clickhouseCounts(),
      minutes: await a.q(
        'SELECT toUnixTimestamp(minute) AS m, conversation_id AS c, sum(messages) AS n FROM {db}.messages_by_minute GROUP BY m, c ORDER BY m, c',
      ),
      users: await a.q('SELECT toString(day) AS d, user_id AS u, sum(events) AS e FROM {db}.active_users_daily GROUP BY d, u ORDER BY d, u'),
    });
    const before = await snapshot();
    await a.analytics.projector.rebuild();
    await expectLogEqualsClickHouse();
    expect(await snapshot()).toEqual(before);
  });

  it('catches up in many batches, each acked once for all its events', async () => {
    await appendAll(
      p.platform.runtime,
      Array.from({ length: 40 }, (_, i) => sent(`g_many${id()}`, 'hal', `batch me ${i}`)),
    );
    const { runtime } = p.platform;
    await a.analytics.projector.stop();
    const small = new AnalyticsProjector(runtime, { maxBatch: 7, maxDelayMs: 20 });
    try {
      await small.rebuild();
      const last = await a.lastSeq();
      await small.waitFor(last);
      expect(await a.clickhouseCounts()).toEqual(await a.logCounts());
      await a.expectRollupsMatchRaw();
      // Acks are cumulative: nothing of the log stays pending on the consumer (once the last ack has reached the server).
      const acked = async () => {
        const info = await runtime.nats.jsm.consumers.info(runtime.shards[0]!.stream, small.consumerName);
        return info.ack_floor.stream_seq === last && info.num_ack_pending === 0;
      };
      await waitUntil(acked, 5000, 'the whole log acked');
    } finally {
      await small.stop();
      await a.analytics.projector.start();
    }
  });

  it("stores the gateway's send-to-deliver timing; latency rollups equal the raw deliveries", async () => {
    const [hal, ivy] = await Promise.all(['hal', 'ivy'].map(async (u) => TestClient.connect(p.ws, await p.token(u))));
    try {
      const conv = (await (
        await fetch(`${p.http}/v1/conversations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${await p.token('hal')}` },
          body: JSON.stringify({ kind: 'direct', peer: 'ivy' }),
        })
      ).json()) as { conversationId: string };
      await Promise.all([hal!.joined(conv.conversationId), ivy!.joined(conv.conversationId)]);
      const seqs: number[] = [];
      for (let i = 0; i < 5; i++) {
        const ack = await hal!.send(conv.conversationId, `timing ${i}`);
        seqs.push(ack.result.seq);
        await ivy!.message(conv.conversationId, `timing ${i}`);
      }
      const rows = async () =>
        a.q<{ seq: string; latency_ms: number }>(`SELECT seq, latency_ms FROM {db}.deliveries WHERE conversation_id = '${conv.conversationId}' ORDER BY seq`);
      await waitUntil(async () => (await rows()).length >= 5, 10_000, 'delivery timing rows');
      const stored = await rows();
      expect(stored.map((r) => Number(r.seq))).toEqual(seqs);
      for (const r of stored) expect(r.latency_ms).toBeLessThan(5000);
      await a.expectDeliveryRollupsMatchRaw();
    } finally {
      await Promise.all([hal!.close(), ivy!.close()]);
    }
  });

  it('reads delivery timing batches record by record, and lone records from gateways that do not batch', async () => {
    const conv = `g_t${id()}`;
    const at = Date.now() - 1000;
    const record = (seq: number) => ({ seq, conversationId: conv, at, deliveredAt: at + seq, recipients: 2 });
    const { nc } = p.platform.runtime.nats;
    const subject = p.platform.runtime.subjects.metricsDelivery();
    // One invalid record (a negative sequence) drops itself, not its batch.
    nc.publish(subject, JSON.stringify([record(1), { ...record(2), seq: -2 }, record(3)]));
    nc.publish(subject, JSON.stringify(record(4)));
    const rows = async () =>
      a.q<{ seq: string; latency_ms: number; recipients: number }>(
        `SELECT seq, latency_ms, recipients FROM {db}.deliveries WHERE conversation_id = '${conv}' ORDER BY seq`,
      );
    await waitUntil(async () => (await rows()).length >= 3, 10_000, 'batched delivery timing rows');
    expect((await rows()).map((r) => [Number(r.seq), r.latency_ms, r.recipients])).toEqual([
      [1, 1, 2],
      [3, 3, 2],
      [4, 4, 2],
    ]);
  });

  it('logged no errors besides the injected failure', () => {
    expect(p.errorLogs.filter((l) => !expectedErrors.test(l))).toEqual([]);
  });
});
