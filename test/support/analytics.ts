import type { ClickHouseClient } from '@clickhouse/client';
import { expect } from 'vitest';
import type { AnalyticsService } from '../../services/analytics/service.js';
import type { TestPlatform } from './platform.js';

/** Queries on the analytics tables of one database, wherever it lives (the platform's chDB, a ClickHouse server). */
export class AnalyticsTables {
  constructor(
    readonly ch: ClickHouseClient,
    readonly db: string,
  ) {}

  async q<T = Record<string, unknown>>(sql: string): Promise<T[]> {
    const rs = await this.ch.query({ query: sql.replaceAll('{db}', this.db), format: 'JSONEachRow' });
    return rs.json<T>();
  }

  async command(sql: string): Promise<void> {
    await this.ch.command({ query: sql.replaceAll('{db}', this.db) });
  }

  /** Rows of `events` by type; fails when any log position appears twice. */
  async clickhouseCounts(): Promise<Record<string, number>> {
    const [dup] = await this.q<{ n: string; u: string }>('SELECT count() AS n, uniqExact(shard, epoch, seq) AS u FROM {db}.events');
    expect(dup!.n).toBe(dup!.u);
    const rows = await this.q<{ type: string; n: string }>('SELECT type, count() AS n FROM {db}.events GROUP BY type');
    return Object.fromEntries(rows.map((r) => [r.type, Number(r.n)]));
  }

  /** Every rollup equals the same aggregate computed from the raw table. */
  async expectRollupsMatchRaw(): Promise<void> {
    for (const [g, fn] of [
      ['minute', 'toStartOfMinute'],
      ['hour', 'toStartOfHour'],
      ['day', 'toStartOfDay'],
    ] as const) {
      const rollup = await this.q(
        `SELECT toUnixTimestamp(${g}) AS b, conversation_id AS c, sum(messages) AS m, sum(text_chars) AS tc, sum(text_bytes) AS tb, sum(attachments) AS a
         FROM {db}.messages_by_${g} GROUP BY b, c ORDER BY b, c`,
      );
      const raw = await this.q(
        `SELECT toUnixTimestamp(${fn}(at)) AS b, conversation_id AS c, count() AS m, sum(text_chars) AS tc, sum(text_bytes) AS tb, sum(attachment_count) AS a
         FROM {db}.events WHERE type = 'message.sent' GROUP BY b, c ORDER BY b, c`,
      );
      expect(rollup, `messages_by_${g}`).toEqual(raw);
    }
    expect(
      await this.q('SELECT toString(day) AS d, user_id AS u, sum(events) AS e, sum(messages) AS m FROM {db}.active_users_daily GROUP BY d, u ORDER BY d, u'),
    ).toEqual(
      await this.q(
        `SELECT toString(toDate(at)) AS d, actor AS u, count() AS e, countIf(type = 'message.sent') AS m FROM {db}.events GROUP BY d, u ORDER BY d, u`,
      ),
    );
    expect(
      await this.q('SELECT user_id AS u, toString(min(first_at)) AS f, toString(max(last_at)) AS l FROM {db}.user_first_seen GROUP BY u ORDER BY u'),
    ).toEqual(await this.q('SELECT actor AS u, toString(min(at)) AS f, toString(max(at)) AS l FROM {db}.events GROUP BY u ORDER BY u'));
  }

  async expectDeliveryRollupsMatchRaw(): Promise<void> {
    expect(
      await this.q(`SELECT toUnixTimestamp(minute) AS m, sum(deliveries) AS n, max(max_ms) AS mx, quantilesTimingMerge(0.5, 0.9, 0.99, 0.999)(latency) AS q
        FROM {db}.delivery_latency_by_minute GROUP BY m ORDER BY m`),
    ).toEqual(
      await this.q(`SELECT toUnixTimestamp(toStartOfMinute(delivered_at)) AS m, count() AS n, max(latency_ms) AS mx, quantilesTiming(0.5, 0.9, 0.99, 0.999)(latency_ms) AS q
        FROM {db}.deliveries GROUP BY m ORDER BY m`),
    );
    expect(await this.q('SELECT sum(deliveries) AS n FROM {db}.delivery_latency_histogram')).toEqual(await this.q('SELECT count() AS n FROM {db}.deliveries'));
  }
}

/** AnalyticsTables of a test platform, with its log and its analytics service. */
export class AnalyticsProbe extends AnalyticsTables {
  readonly analytics: AnalyticsService;

  constructor(private readonly p: TestPlatform) {
    super(p.platform.runtime.clickhouse, p.config.clickhouse.database);
    this.analytics = p.platform.analytics!;
  }

  async lastSeq(): Promise<number> {
    const { runtime } = this.p.platform;
    return (await runtime.nats.jsm.streams.info(runtime.shards[0]!.stream)).state.last_seq;
  }

  /** Waits until the log stops growing (derived events included) and analytics has ingested all of it. */
  async settled(timeoutMs = 15_000): Promise<number> {
    for (;;) {
      const seq = await this.lastSeq();
      await this.analytics.projector.waitFor(seq, timeoutMs);
      await new Promise((r) => setTimeout(r, 150));
      if ((await this.lastSeq()) === seq) return seq;
    }
  }

  /** Events of the log counted by type, read straight from the stream. */
  async logCounts(): Promise<Record<string, number>> {
    const { runtime } = this.p.platform;
    const last = await this.lastSeq();
    const counts: Record<string, number> = {};
    const consumer = await runtime.nats.js.consumers.get(runtime.shards[0]!.stream);
    const messages = await consumer.consume({ max_messages: 1000 });
    for await (const m of messages) {
      const type = String((JSON.parse(new TextDecoder().decode(m.data)) as { type?: unknown }).type);
      counts[type] = (counts[type] ?? 0) + 1;
      if (m.seq >= last) break;
    }
    await messages.close();
    return counts;
  }
}
