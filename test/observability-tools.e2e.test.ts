import fs from 'node:fs';
import os from 'node:os';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { BusiestHoursReport, ConversationKindsReport, type ParleyEvent } from '../contracts/index.js';
import { parseReportQuery, runReport } from '../services/analytics-sql/reports.js';
import { runReadOnlySql } from '../services/analytics-sql/sql.js';
import { AnalyticsProbe } from './support/analytics.js';
import { appendAll, created, sent, waitUntil } from './support/events.js';
import { expandClickHouseMacros } from './support/grafana-macros.js';
import { HttpReceiver } from './support/http-receiver.js';
import { notificationApi } from './support/notifications.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { isExposed, promqlMetricNames } from './support/promql-names.js';
import { api, TestClient } from './support/ws-client.js';

/**
 * The operator-facing files in ops/ against a running platform: /metrics is
 * one valid exposition (checked with a real parser), and the alert rules
 * and the Grafana dashboard only use what the platform exposes and queries
 * that run through the analysts' SQL guard.
 */
let p: TestPlatform;
const clients: TestClient[] = [];
let page: string;
let families: PromFamily[];
let exposed: Map<string, string>;
let hooks: HttpReceiver;
const ADMIN = 'analytics-admin-token-0123456789';
const DAY = 86_400_000;
/** A channel written straight to the log, two messages at 03:xx UTC three days ago (the live traffic below is a group, now). */
const channel = `g_ch${Date.now().toString(36)}`;
const early = Math.floor((Date.now() - 3 * DAY) / DAY) * DAY + 3 * 3_600_000 + 15 * 60_000;

beforeAll(async () => {
  // eve is never online: her webhook (on this machine, so private http targets are allowed) is called once a window.
  p = await startTestPlatform({
    env: { ANALYTICS_ADMIN_TOKEN: ADMIN, NOTIFY_COALESCE_MS: '200', NOTIFY_ALLOW_HTTP: 'true', NOTIFY_ALLOW_PRIVATE_TARGETS: 'true' },
  });
  hooks = await HttpReceiver.start();
  await notificationApi(p).webhook('eve', hooks.url('/eve'));
  const opened = created(channel, ['cy', 'dee'], early);
  (opened.data as { kind: string }).kind = 'channel';
  await appendAll(p.platform.runtime, [opened, sent(channel, 'cy', 'early', early + 1000), sent(channel, 'dee', 'bird', early + 2000)] as ParleyEvent[]);
  const alice = await TestClient.connect(p.ws, await p.token('alice'));
  const bob = await TestClient.connect(p.ws, await p.token('bob'));
  clients.push(alice, bob);
  const conv = await api(p.http, 'POST', '/v1/conversations', await p.token('alice'), { kind: 'group', title: 'ops', members: ['bob', 'eve'] });
  await alice.joined(conv.body.conversationId);
  await bob.joined(conv.body.conversationId);
  for (const text of ['one', 'two', 'three']) {
    expect((await alice.send(conv.body.conversationId, text)).t).toBe('ack');
    await bob.message(conv.body.conversationId, text);
  }
  const analytics = new AnalyticsProbe(p);
  await analytics.settled();
  // Delivery timing reaches ClickHouse in its own batches (core NATS, not the log).
  await waitUntil(
    async () => Number((await analytics.q<{ n: string }>('SELECT count() AS n FROM {db}.deliveries'))[0]!.n) >= 3,
    15_000,
    'delivery timing rows',
  );
  await api(p.http, 'GET', '/v1/conversations');
  // The attempt is timed once the receiver has answered: wait for it on the page itself.
  await waitUntil(
    async () => /^parley_notification_attempt_seconds_count\{[^}]*kind="webhook"/m.test((page = await (await fetch(`${p.http}/metrics`)).text())),
    15_000,
    'a timed webhook attempt',
  );
  families = parsePrometheusTextFormat(page);
  exposed = new Map(families.map((f) => [f.name, f.type]));
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await p?.stop();
  await hooks?.close();
});

/** The page again with histograms declared untyped, so the parser keeps every `_bucket` line with its labels (it folds labelled histogram series into one). */
function bucketSamples(name: string): { labels: Record<string, string>; value: number }[] {
  const untyped = parsePrometheusTextFormat(page.replace(new RegExp(`^# TYPE ${name} histogram$`, 'm'), `# TYPE ${name} untyped`));
  return (untyped.find((f) => f.name === `${name}_bucket`)?.metrics ?? []).map((s) => ({ labels: s.labels ?? {}, value: Number(s.value) }));
}

describe('/metrics', () => {
  it('is one exposition: every family once, with HELP and TYPE, and valid samples', () => {
    const names = families.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    expect(page.match(/^# TYPE /gm)!.length).toBe(names.length);
    for (const f of families) {
      expect(f.help, f.name).not.toBe('');
      expect(f.type, f.name).not.toBe('UNTYPED');
      for (const s of f.metrics)
        for (const v of [s.value, s.count, s.sum].filter((x) => x !== undefined)) expect(Number.isNaN(Number(v)) && v !== 'NaN', `${f.name} ${v}`).toBe(false);
    }
  });

  it('has the process and Node.js runtime series, labelled by the process roles', () => {
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_gc_duration_seconds',
    ])
      expect(exposed.has(name), name).toBe(true);
    const rss = families.find((f) => f.name === 'process_resident_memory_bytes')!;
    expect(rss.metrics[0]!.labels).toEqual({ role: 'gateway,projector,membership,analytics,notifier' });
  });

  it('has the latency histograms with samples from the traffic, each labelled by role', () => {
    const seen = (name: string) => bucketSamples(name).filter((s) => s.labels.le === '+Inf');
    expect(seen('parley_send_to_ack_seconds').find((s) => s.labels.command === 'send')).toMatchObject({ labels: { role: 'gateway' } });
    expect(seen('parley_send_to_ack_seconds').find((s) => s.labels.command === 'send')!.value).toBeGreaterThanOrEqual(3);
    expect(seen('parley_send_to_deliver_seconds')[0]).toMatchObject({ labels: { role: 'gateway' } });
    expect(seen('parley_send_to_deliver_seconds')[0]!.value).toBeGreaterThanOrEqual(3);
    expect(seen('parley_projector_apply_delay_seconds').find((s) => s.labels.projector === 'read-model')).toMatchObject({ labels: { role: 'projector' } });
    expect(seen('parley_notification_attempt_seconds').find((s) => s.labels.kind === 'webhook')).toMatchObject({
      labels: { outcome: 'sent', role: 'notifier' },
      value: expect.any(Number),
    });
    expect(exposed.get('parley_nats_connected')).toBe('GAUGE');
    expect(families.find((f) => f.name === 'parley_nats_connected')!.metrics[0]!.value).toBe('1');
    expect(families.find((f) => f.name === 'parley_storage_full')!.metrics.map((m) => [m.labels!.store, m.value])).toEqual([
      ['nats', '0'],
      ['postgres', '0'],
      ['clickhouse', '0'],
    ]);
    // The early warning (ParleyDiskSpaceLow): free bytes of each embedded store's disk, the same figure df gives.
    const free = families.find((f) => f.name === 'parley_storage_free_bytes')!.metrics;
    expect(free.map((m) => m.labels!.store).sort()).toEqual(['clickhouse', 'nats', 'postgres']);
    const df = fs.statfsSync(os.tmpdir());
    for (const m of free) expect(Math.abs(Number(m.value) - df.bavail * df.bsize)).toBeLessThan(2 * 1024 * 1024 * 1024);
  });

  it('has non-decreasing buckets ending in +Inf equal to _count for every histogram series', () => {
    const histograms = families.filter((f) => f.type === 'HISTOGRAM').map((f) => f.name);
    expect(histograms.length).toBeGreaterThan(5);
    let series = 0;
    for (const name of histograms) {
      const bySeries = new Map<string, { le: number; value: number }[]>();
      for (const s of bucketSamples(name)) {
        const { le, ...rest } = s.labels;
        expect(le, name).toBeDefined();
        const key = JSON.stringify(rest);
        bySeries.set(key, [...(bySeries.get(key) ?? []), { le: le === '+Inf' ? Infinity : Number(le), value: s.value }]);
      }
      const counts = new Map(
        parsePrometheusTextFormat(page.replace(new RegExp(`^# TYPE ${name} histogram$`, 'm'), `# TYPE ${name} untyped`))
          .find((f) => f.name === `${name}_count`)
          ?.metrics.map((m) => [JSON.stringify(m.labels ?? {}), Number(m.value)]) ?? [],
      );
      for (const [key, buckets] of bySeries) {
        series++;
        expect(buckets.at(-1)!.le, `${name}${key}`).toBe(Infinity);
        for (let i = 1; i < buckets.length; i++) {
          expect(buckets[i]!.le, `${name}${key} le order`).toBeGreaterThan(buckets[i - 1]!.le);
          expect(buckets[i]!.value, `${name}${key} cumulative`).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
        }
        expect(counts.get(key), `${name}${key} _count`).toBe(buckets.at(-1)!.value);
      }
    }
    expect(series).toBeGreaterThan(5);
  });
});

describe('reports: conversation kinds and busiest hours', () => {
  const window = () => ({ from: new Date(Date.now() - 7 * DAY).toISOString(), to: new Date(Date.now() + 60_000).toISOString() });
  const ctx = () => ({ client: p.platform.runtime.clickhouseReadOnly, database: p.config.clickhouse.database });

  it("counts messages by the kind of their conversation, over HTTP as in the CLI's direct path", async () => {
    const w = window();
    const res = await api(p.http, 'GET', `/v1/analytics/reports/conversation-kinds?${new URLSearchParams(w)}`, ADMIN);
    expect(res.status).toBe(200);
    const body = ConversationKindsReport.parse(res.body);
    expect(body.rows).toEqual([
      { kind: 'group', conversations: 1, messages: 3, textBytes: 11 },
      { kind: 'channel', conversations: 1, messages: 2, textBytes: 9 },
    ]);
    expect(await runReport(ctx(), 'conversation-kinds', parseReportQuery('conversation-kinds', w))).toEqual(body);
  });

  it('counts messages per hour of the day and per weekday and hour, equal to the raw events', async () => {
    const raw = new Map(
      (
        await new AnalyticsProbe(p).q<{ d: number; h: number; n: string }>(
          `SELECT toDayOfWeek(at) AS d, toHour(at) AS h, count() AS n FROM {db}.events WHERE type = 'message.sent' GROUP BY d, h`,
        )
      ).map((r) => [`${r.d}:${r.h}`, Number(r.n)]),
    );
    const byHour = BusiestHoursReport.parse(await runReport(ctx(), 'busiest-hours', parseReportQuery('busiest-hours', window())));
    expect(byHour.rows).toHaveLength(24);
    expect(byHour.rows.find((r) => r.hour === 3)!.messages).toBeGreaterThanOrEqual(2);
    for (const r of byHour.rows) expect(r.messages, `hour ${r.hour}`).toBe([...raw].filter(([k]) => k.endsWith(`:${r.hour}`)).reduce((n, [, v]) => n + v, 0));
    const byWeekday = BusiestHoursReport.parse(await runReport(ctx(), 'busiest-hours', parseReportQuery('busiest-hours', { ...window(), by: 'weekday-hour' })));
    expect(byWeekday.rows).toHaveLength(168);
    for (const r of byWeekday.rows) expect(r.messages, `${r.weekday} ${r.hour}`).toBe(raw.get(`${r.weekday}:${r.hour}`) ?? 0);
    expect(() => parseReportQuery('busiest-hours', { by: 'minute' })).toThrow(/invalid busiest-hours report query/);
  });
});

describe('ops/prometheus/alerts.yml', () => {
  const doc = parseYaml(fs.readFileSync('ops/prometheus/alerts.yml', 'utf8')) as { groups: { name: string; rules: Record<string, unknown>[] }[] };

  it('has the structure Prometheus loads (groups of named alerts with expr, for, labels, annotations)', () => {
    expect(Array.isArray(doc.groups) && doc.groups.length > 0).toBe(true);
    const alerts = new Set<string>();
    for (const g of doc.groups) {
      expect(typeof g.name).toBe('string');
      expect(g.rules.length).toBeGreaterThan(0);
      for (const r of g.rules) {
        expect(
          Object.keys(r).every((k) => ['alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations'].includes(k)),
          JSON.stringify(r),
        ).toBe(true);
        expect(r.alert).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
        expect(alerts.has(r.alert as string), `${r.alert} twice`).toBe(false);
        alerts.add(r.alert as string);
        expect(typeof r.expr === 'string' && r.expr.length > 0).toBe(true);
        expect(r.for).toMatch(/^[0-9]+[smhd]$/);
        expect((r.labels as Record<string, string>).severity).toMatch(/^(warning|critical)$/);
        expect(typeof (r.annotations as Record<string, string>).summary).toBe('string');
        // Balanced brackets: a cheap syntax check without promtool.
        for (const [open, close] of [
          ['(', ')'],
          ['{', '}'],
          ['[', ']'],
        ] as const)
          expect((r.expr as string).split(open).length, `${r.alert} ${open}${close}`).toBe((r.expr as string).split(close).length);
      }
    }
    for (const topic of [
      'ParleyProjectorLagHigh',
      'ParleyParkedEvents',
      'ParleyNatsDisconnected',
      'ParleyStorageFull',
      'ParleyDiskSpaceLow',
      'ParleyGateway5xxRate',
      'ParleyWebhookFailureRate',
    ])
      expect(alerts.has(topic), topic).toBe(true);
  });

  it('only names metrics the platform exposes', () => {
    for (const r of doc.groups.flatMap((g) => g.rules)) {
      const names = promqlMetricNames(r.expr as string);
      expect(names.length, r.alert as string).toBeGreaterThan(0);
      for (const n of names) expect(isExposed(n, exposed), `${r.alert}: ${n}`).toBe(true);
    }
  });
});

describe('ops/grafana/parley.json', () => {
  type Target = { datasource: { type: string; uid: string }; rawSql?: string; expr?: string };
  type Panel = { type: string; title: string; datasource?: { type: string }; targets?: Target[] };
  const dashboard = JSON.parse(fs.readFileSync('ops/grafana/parley.json', 'utf8')) as { uid: string; panels: Panel[] };
  const targets = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((t) => ({ panel: panel.title, ...t })));
  const provisioned = fs.readFileSync('ops/grafana/provisioning/datasources.yaml', 'utf8');

  it('uses only the provisioned ClickHouse and Prometheus data sources', () => {
    const { datasources } = parseYaml(provisioned) as { datasources: { uid: string; type: string; jsonData: { port?: number } }[] };
    const known = new Map(datasources.map((d) => [d.uid, d.type]));
    expect(datasources.find((d) => d.type === 'grafana-clickhouse-datasource')!.jsonData.port).toBe(8123);
    for (const t of targets) expect(known.get(t.datasource.uid), t.panel).toBe(t.datasource.type);
    expect(targets.filter((t) => t.datasource.type === 'grafana-clickhouse-datasource').length).toBeGreaterThanOrEqual(6);
    expect(targets.filter((t) => t.datasource.type === 'prometheus').length).toBeGreaterThanOrEqual(6);
    expect((parseYaml(fs.readFileSync('ops/grafana/provisioning/dashboards.yaml', 'utf8')) as { providers: { type: string }[] }).providers[0]!.type).toBe(
      'file',
    );
  });

  it("runs every ClickHouse query, macros expanded as the plugin does, through the analysts' SQL guard", async () => {
    const to = Math.floor(Date.now() / 1000) + 60;
    const results = new Map<string, unknown[][]>();
    for (const t of targets.filter((x) => x.datasource.type === 'grafana-clickhouse-datasource')) {
      const sql = expandClickHouseMacros(t.rawSql!, { from: to - 7 * 86_400, to, intervalSeconds: 300 });
      expect(sql, t.panel).not.toContain('$__');
      const res = await runReadOnlySql(p.platform.runtime.clickhouseReadOnly, { query: sql, maxRows: 10_000 }, p.config.clickhouse.database).catch(
        (err: Error) => {
          throw new Error(`${t.panel}: ${err.message}`);
        },
      );
      results.set(t.panel, res.rows);
    }
    // The traffic: three messages in a group now (alice the only actor: bob's join derives from her action), two in a channel three days ago.
    const sum = (panel: string, col: number) => results.get(panel)!.reduce((n, r) => n + Number(r[col]), 0);
    expect(sum('Messages', 1)).toBe(5);
    expect(results.get('Messages per conversation kind')!.map((r) => [r[0], Number(r[1])])).toEqual([
      ['group', 3],
      ['channel', 2],
    ]);
    expect(sum('Busiest hours of the day (UTC)', 1)).toBe(5);
    expect(Number(results.get('Daily active users')!.at(-1)![1])).toBe(1);
    expect(results.get('Daily active users')!.length).toBe(2);
    expect(results.get('Send-to-deliver latency percentiles'), 'delivery timing rows').not.toEqual([]);
    expect(results.get('Top conversations')!.length).toBe(2);
    expect(results.get('Weekly retention cohorts')!.length).toBeGreaterThan(0);
  }, 30_000);

  it('names only exposed metrics in its Prometheus queries', () => {
    for (const t of targets.filter((x) => x.datasource.type === 'prometheus')) {
      const names = promqlMetricNames(t.expr!);
      expect(names.length, t.panel).toBeGreaterThan(0);
      for (const n of names) expect(isExposed(n, exposed), `${t.panel}: ${n}`).toBe(true);
    }
  });
});
