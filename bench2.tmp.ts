import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { migrateClickHouse } from './services/shared/clickhouse-migrate.js';
import { createLogger } from './services/shared/logger.js';
import { toEventRow } from './services/analytics/rows.js';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
const conn = createChdbConnection({ path: dir });
const client = createClient({ connection: conn as any });
await migrateClickHouse(client, 'parley', createLogger({ level: 'warn' }));
const [mode, how, Bs, dedup] = process.argv.slice(2);
const B = Number(Bs);
if (mode === 'nomv') for (const v of ['messages_by_minute_mv','messages_by_hour_mv','messages_by_day_mv','active_users_daily_mv','active_users_weekly_mv','active_users_monthly_mv','user_first_seen_mv']) await client.command({ query: `DROP VIEW parley.${v}` });
const N = 100000; const t0 = Date.now() - 3600_000;
const rows = [];
for (let i = 0; i < N; i++) rows.push(toEventRow({ shard: 0, epoch: '1', seq: i + 1, subject: `t.ev.conv.g_${i % 500}` }, { type: 'message.sent', v: 1, at: t0 + i * 10, actor: `u${i % 2000}`, data: { conversationId: `g_${i % 500}`, messageId: String(7000000000000000000n + BigInt(i)), clientMsgId: `c${i}`, text: `message ${i} 你好 👋 some more text here` } } as any));
const cols = Object.keys(rows[0]!);
const start = performance.now();
const cpu0 = process.cpuUsage();
for (let off = 0; off < N; off += B) {
  const batch = rows.slice(off, off + B);
  const body = batch.map((r) => JSON.stringify(r)).join('\n');
  const settings: Record<string, string | number> = dedup === 'nodedup' ? { insert_deduplicate: 0, async_insert: 0 } : { insert_deduplication_token: `b${off}`, async_insert: 0 };
  if (how === 'raw') await (conn as any).chdb.rawInsert({ table: 'parley.events', columns: cols, values: Buffer.from(body), format: 'JSONEachRow', settings });
  else { const r = await client.exec({ query: `INSERT INTO parley.events (${cols.join(',')}) SETTINGS ${Object.entries(settings).map(([k, v]) => `${k}=${typeof v === 'string' ? `'${v}'` : v}`).join(', ')} FORMAT JSONEachRow`, values: Readable.from([body]) }); for await (const _ of r.stream) void _; }
}
const el = performance.now() - start; const cpu = process.cpuUsage(cpu0);
console.log(mode, how, B, dedup ?? '', { perSec: Math.round(N / el * 1000), totalMs: Math.round(el), cpuUs: ((cpu.user + cpu.system) / N).toFixed(1) });
await client.close();
