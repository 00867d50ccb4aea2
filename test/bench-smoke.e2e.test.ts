import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { markdownReport } from '../ops/bench/report.js';
import { writeRunFiles } from '../ops/bench/results.js';
import { latestJsonSchema } from '../ops/bench/summary.js';
import { SMOKE } from '../ops/bench/scales.js';
import { runSuite } from '../ops/bench/suite.js';

const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Keeps the benchmark harness working: every scenario at tiny size against
 * both systems. Asserts only that sane numbers came out; never timing (the
 * full run, `npm run bench`, is manual: docs/benchmarks.md).
 */
describe('benchmark suite (smoke)', () => {
  it('runs every scenario against Parley and the peer and reports figures', { timeout: 240_000 }, async () => {
    const lines: string[] = [];
    const r = await runSuite({ scale: SMOKE, projectDir, natsUrl: inject('natsUrl'), pgAdminUrl: inject('pgAdminUrl'), log: (l) => lines.push(l) }).catch(
      (err: unknown) => {
        // The suite's own progress lines say which step broke.
        throw new Error(`${String(err)}\n${lines.join('\n')}`, { cause: err });
      },
    );
    for (const system of ['parley', 'peer'] as const) {
      const s = r[system];
      expect(s.fanout.map((f) => f.topology)).toEqual(['direct', 'group', 'channel']);
      for (const f of s.fanout) {
        for (const p of f.phases) {
          expect(p.acked, `${system} ${f.topology} ${p.name}`).toBeGreaterThan(0);
          expect(p.deliveries).toBeGreaterThan(0);
          expect(p.duplicates).toBe(0);
          expect(p.latencyMs.p50).toBeGreaterThan(0);
          expect(p.latencyMs.p99).toBeGreaterThanOrEqual(p.latencyMs.p50);
          expect(Number.isFinite(p.cpuPerDeliveredUs)).toBe(true);
          // Every server process is counted (NATS and Postgres here are the test run's, not the suite's: left out).
          expect(Object.keys(p.cpuUsBy)).toEqual(system === 'parley' ? ['gateways', 'workers'] : ['server']);
          expect(p.allServerCpuUs).toBeGreaterThanOrEqual(p.serverCpuUs);
          expect(p.allServerCpuUs).toBe(Object.values(p.cpuUsBy).reduce((a, b) => a + b, 0));
        }
      }
      expect(s.idle!.connections).toBeGreaterThan(0);
      expect(Number.isFinite(s.idle!.bytesPerConnection)).toBe(true);
      expect(s.storm!.resumed).toBeGreaterThan(0);
      expect(s.storm!.duplicates).toBe(0);
      expect(s.storm!.allResumedSeconds).toBeGreaterThan(0);
      expect(s.storm!.allServerCpuSeconds).toBeGreaterThanOrEqual(s.storm!.serverCpuSeconds);
    }
    for (const e of r.external.filter((x) => x.present)) {
      expect(e.exitCode, `${e.file}: ${e.output.join('\n')}`).toBe(0);
      expect(e.headline?.perSecond ?? 0, e.file).toBeGreaterThan(0);
    }
    expect(markdownReport(r)).toContain('## Brief targets');
    // bench-results/latest.json, as `npm run bench` writes it (here into a temporary folder).
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
    try {
      const files = writeRunFiles(r, out);
      const latest = latestJsonSchema.parse(JSON.parse(fs.readFileSync(files.latest!, 'utf8')));
      expect(latest.map((x) => `${x.system}/${x.scenario}`)).toEqual([
        'parley/direct',
        'parley/group10',
        'parley/channel20',
        'peer/direct',
        'peer/group10',
        'peer/channel20',
      ]);
      for (const row of latest) {
        expect(row.maxSendsPerSec, row.scenario).toBeGreaterThan(0);
        // The smoke channel has a max phase only; 1:1 and groups have all three.
        if (row.scenario === 'channel20') continue;
        expect(row.half!.p99Ms).toBeGreaterThanOrEqual(row.half!.p50Ms);
        expect(row.at1000!.p50Ms, row.scenario).toBeGreaterThan(0);
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
