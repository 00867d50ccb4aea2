/**
 * Analytics ingest benchmark (not a test): N synthetic stored events through
 * the analytics projector's own per-event and per-batch path — read the
 * stored bytes, map to a row, serialise, record the batch checkpoint, INSERT
 * with its dedup token into `events` with every materialized view attached —
 * into a fresh embedded chDB. Like the projector, the next batch is prepared
 * while the previous one is being inserted. JetStream delivery is not part
 * of it (see the projector rebuild benchmark for the log side).
 *
 *   npx tsx ops/bench/analytics-ingest.ts [--events 500000] [--batch 100000] [--phases]
 *
 * Prints events/s and CPU microseconds per event (all threads of the
 * process, chDB's included). `--phases` runs the JavaScript side and the
 * ClickHouse side one after the other instead, to show what each costs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ParleyEvent } from '../../contracts/index.js';
import { DEFAULT_MAX_BATCH, EVENTS_PER_TURN, nextTurn } from '../../services/analytics/projector.js';
import { readStoredEvent, toEventRow } from '../../services/analytics/rows.js';
import { batchToken, eventRowLine, insertEvents, writeIntent } from '../../services/analytics/sink.js';
import { createAnalyticsClient } from '../../services/analytics-store/clickhouse.js';
import { migrateClickHouse } from '../../services/analytics-store/clickhouse-migrate.js';
import { loadConfig } from '../../services/runtime/config.js';
import { createLogger } from '../../services/observability/logger.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '500000' },
    batch: { type: 'string', default: String(DEFAULT_MAX_BATCH) },
    phases: { type: 'boolean', default: false },
  },
});
const N = Number(values.events);
const BATCH = Number(values.batch);
const out = (line: string) => process.stdout.write(line + '\n');

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-bench-analytics-'));
const config = loadConfig({ PARLEY_DATA_DIR: dataDir });
const db = config.clickhouse.database;
const client = createAnalyticsClient(config);
await migrateClickHouse(client, db, createLogger({ level: 'warn' }));

// A realistic mix: mostly messages (mixed scripts and emoji), some reactions, read markers, new conversations.
const encoder = new TextEncoder();
const texts = ['ok 👍', '个人开发可以，看你怎么讲了', 'Would you please give an example of a bar raising answer?', 'مرحبا بالجميع', '吹牛就没输过 😂😂'];
const start = Date.now() - 30 * 86_400_000;
const stored: { subject: string; bytes: Uint8Array }[] = [];
for (let i = 0; i < N; i++) {
  const conv = `g_${i % 500}`;
  const actor = `u${(i * 7) % 2000}`;
  const at = start + Math.floor((i / N) * 30 * 86_400_000);
  const r = i % 20;
  let event: ParleyEvent;
  let subject = `parley.ev.conv.${conv}`;
  if (r < 17)
    event = {
      type: 'message.sent',
      v: 1,
      at,
      actor,
      data: { conversationId: conv, messageId: String(7_300_000_000_000_000_000n + BigInt(i)), clientMsgId: `c${i}`, text: texts[i % texts.length]! },
    };
  else if (r === 17)
    event = {
      type: 'reaction.added',
      v: 1,
      at,
      actor,
      data: { conversationId: conv, target: { messageId: String(7_300_000_000_000_000_000n + BigInt(i - 1)), seq: i }, emoji: '👍' },
    };
  else if (r === 18) {
    event = { type: 'read.marked', v: 1, at, actor, data: { conversationId: conv, seq: i } };
    subject = `parley.ev.user.${actor}`;
  } else
    event = {
      type: 'conversation.created',
      v: 1,
      at,
      actor,
      data: {
        conversationId: conv,
        kind: 'group',
        title: 'room',
        members: [
          { userId: actor, role: 'owner' },
          { userId: 'u1', role: 'member' },
        ],
      },
    };
  stored.push({ subject, bytes: encoder.encode(JSON.stringify(event)) });
}
out(`${N} events generated (${(stored.reduce((s, e) => s + e.bytes.length, 0) / N).toFixed(0)} bytes each on average); ingesting in batches of ${BATCH}`);

const key = { consumer: 'bench-analytics', shard: 0, epoch: String(Date.now()) };
let prepareMs = 0;
const prepare = async (from: number, to: number): Promise<string[]> => {
  let t = performance.now();
  const lines: string[] = [];
  for (let i = from; i < to; i++) {
    // As the projector does, so that the batch in flight goes on meanwhile.
    if (i % EVENTS_PER_TURN === 0) {
      prepareMs += performance.now() - t;
      await nextTurn();
      t = performance.now();
    }
    const e = stored[i]!;
    lines.push(eventRowLine(toEventRow({ shard: 0, epoch: key.epoch, seq: i + 1, subject: e.subject }, readStoredEvent(e.bytes))));
  }
  prepareMs += performance.now() - t;
  return lines;
};
const insert = async (first: number, last: number, lines: string[]) => {
  const intent = { first, last, token: batchToken(key, first, last) };
  await writeIntent(client, db, key, intent);
  await insertEvents(client, db, lines, intent.token);
};

const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let elapsed: number;
if (values.phases) {
  // The two halves apart: JavaScript alone (one core), then ClickHouse alone (its threads).
  const batches: [number, number, string[]][] = [];
  for (let from = 0; from < N; from += BATCH) batches.push([from + 1, Math.min(N, from + BATCH), await prepare(from, Math.min(N, from + BATCH))]);
  const jsCpu = cpuMs(process.cpuUsage(cpu0));
  const t1 = performance.now();
  for (const [first, last, lines] of batches) await insert(first, last, lines);
  const chSeconds = (performance.now() - t1) / 1000;
  out(`JS alone: ${((jsCpu * 1000) / N).toFixed(1)} µs CPU per event (${Math.round(N / (jsCpu / 1000)).toLocaleString('en')} events/s on one core)`);
  out(
    `ClickHouse alone: ${Math.round(N / chSeconds).toLocaleString('en')} events/s, ${(((cpuMs(process.cpuUsage(cpu0)) - jsCpu) * 1000) / N).toFixed(1)} µs CPU per event`,
  );
  elapsed = (performance.now() - t0) / 1000;
} else {
  // As the projector does: the next batch is prepared while the previous one is inserted.
  let inflight: Promise<void> = Promise.resolve();
  for (let from = 0; from < N; from += BATCH) {
    const to = Math.min(N, from + BATCH);
    const lines = await prepare(from, to);
    await inflight;
    inflight = insert(from + 1, to, lines);
  }
  await inflight;
  elapsed = (performance.now() - t0) / 1000;
}
const cpu = process.cpuUsage(cpu0);

const rs = await client.query({
  query: `SELECT (SELECT count() FROM ${db}.events) AS events, (SELECT sum(messages) FROM ${db}.messages_by_minute) AS messages`,
  format: 'JSONEachRow',
});
const [check] = await rs.json<{ events: string; messages: string }>();
out(
  `ingested ${N} events in ${elapsed.toFixed(2)} s: ${Math.round(N / elapsed).toLocaleString('en')} events/s${values.phases ? ' (phases one after the other)' : ''}`,
);
out(`CPU: ${((cpu.user + cpu.system) / N).toFixed(1)} µs per event (all threads); JS read+map+serialise: ${((prepareMs * 1000) / N).toFixed(1)} µs per event`);
// Other work on the machine moves these figures a lot: say how busy it was.
out(
  `machine: ${os.cpus().length} cores, load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
out(`check: events table ${check!.events}, messages rollup ${check!.messages} (expected ${N} and ${stored.filter((_, i) => i % 20 < 17).length})`);
await client.close();
fs.rmSync(dataDir, { recursive: true, force: true });
