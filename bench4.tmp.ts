import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createChdbConnection } from 'chdb/connection';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-'));
const conn: any = createChdbConnection({ path: dir });
const q = (s: string) => conn.chdb.queryAsync(s, { format: 'CSV' });
const N = 100000; const now = Math.floor(Date.now() / 1000);
const time = async (label: string, f: () => Promise<unknown>) => { const a = performance.now(); const c0 = process.cpuUsage(); try { await f(); } catch (e) { console.log(label, 'ERR', String(e).slice(0, 200)); return; } const c = process.cpuUsage(c0); console.log(label, Math.round(performance.now() - a), 'ms', ((c.user + c.system) / N).toFixed(2), 'cpu us/row'); };
const variants: Record<string, [string, (i: number) => unknown[]]> = {
  u64: ['a UInt64', (i) => [i]],
  str: ['a String', (i) => [`g_${i % 500}`]],
  lc: ['a LowCardinality(String)', (i) => ['message.sent']],
  dt64frac: ["a DateTime64(3, 'UTC')", (i) => [`${now + i}.123`]],
  dt64iso: ["a DateTime64(3, 'UTC')", (i) => [`2024-01-01 00:00:00.123`]],
  dt: ["a DateTime('UTC')", (i) => [now + i]],
  part: ["a DateTime('UTC'), b UInt64", (i) => [now + i, i]],
};
for (const [name, [schema, gen]] of Object.entries(variants)) {
  await q(`CREATE TABLE ${name} (${schema}) ENGINE = MergeTree ORDER BY tuple()${name === 'part' ? ' PARTITION BY toYYYYMM(a)' : ''}`);
  const tsv = Array.from({ length: N }, (_, i) => gen(i).join('\t')).join('\n');
  await time(name, () => conn.chdb.rawInsert({ table: name, values: Buffer.from(tsv), format: 'TSV', settings: { async_insert: 0 } }));
}
await q(`CREATE TABLE rmt (a UInt64, b String) ENGINE = ReplacingMergeTree ORDER BY a`);
await time('rmt', () => conn.chdb.rawInsert({ table: 'rmt', values: Buffer.from(Array.from({ length: N }, (_, i) => `${i}\tx`).join('\n')), format: 'TSV', settings: { async_insert: 0 } }));
await time('select 1 x10', async () => { for (let i = 0; i < 10; i++) await q('SELECT 1'); });
