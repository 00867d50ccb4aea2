import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { ErrorBody, ReportName, SqlRequest, type AnalyticsReport, type SqlResponse } from '../../contracts/index.js';
import { truncateDerivedTables } from '../../services/analytics/sink.js';
import { parseReportQuery, runReport } from '../../services/analytics-sql/reports.js';
import { runReadOnlySql } from '../../services/analytics-sql/sql.js';
import { createAnalyticsClient, createReadOnlyAnalyticsClient } from '../../services/analytics-store/clickhouse.js';
import { loadConfig, type Config } from '../../services/runtime/config.js';
import { AppError } from '../../services/runtime/errors.js';
import { projectDirOf } from '../project-dir.js';
import { intOption, parse, printJson, UsageError, type CliIO, type CommandGroup } from './command.js';

/**
 * `parley analytics ...` (docs/analytics.md, "Access"). Embedded chDB lets
 * one process own its data directory, and a running platform owns it: so
 * `sql` and `report` first ask the running gateway (POST /v1/analytics/sql,
 * GET /v1/analytics/reports/<name>, with ANALYTICS_ADMIN_TOKEN when set) and
 * open the directory themselves only when nothing listens there. With
 * CLICKHOUSE_URL they talk to the server directly. Either way a statement runs
 * in the read-only session after the same parse-tree check (runReadOnlySql,
 * services/analytics-sql/sql-guard/): the gateway's or this process's.
 */

const projectDir = projectDirOf(import.meta.url);

function gatewayUrl(config: Config, override: string | undefined): string {
  if (override) return override.replace(/\/$/, '');
  const host = ['0.0.0.0', '::', ''].includes(config.gateway.host) ? '127.0.0.1' : config.gateway.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.gateway.port}`;
}

const refused = (err: unknown) => /ECONNREFUSED/.test(String((err as { cause?: { code?: string } })?.cause?.code ?? err));

/** Calls the gateway; null when nothing listens there (the platform is not running). */
async function viaGateway<T>(config: Config, url: string, init: RequestInit): Promise<T | null> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (config.analytics.adminToken) headers.authorization = `Bearer ${config.analytics.adminToken}`;
  let res: Response;
  try {
    res = await fetch(url, { ...init, headers });
  } catch (err) {
    if (refused(err)) return null;
    throw err;
  }
  const body: unknown = await res.json().catch(() => null);
  if (res.ok) return body as T;
  const error = ErrorBody.safeParse(body);
  if (error.success) throw new AppError(error.data.code, error.data.message);
  throw new Error(`${url} answered ${res.status}`);
}

/** Opens ClickHouse directly: the server, or the embedded directory when no platform holds it. */
async function withDirect<T>(config: Config, readOnly: boolean, fn: (client: ClickHouseClient) => Promise<T>): Promise<T> {
  let client: ClickHouseClient;
  try {
    client = readOnly ? await createReadOnlyAnalyticsClient(config) : createAnalyticsClient(config);
  } catch (err) {
    // chDB refuses a data directory another process holds (it prints the lock error itself).
    if (!config.clickhouse.url && /Cannot lock file|already running|Failed to create connection/i.test(`${(err as Error)?.message} ${(err as Error)?.cause}`)) {
      throw new Error(`another process (the platform?) owns ${path.join(config.dataDir, 'chdb')}: stop it, or reach its gateway (--gateway, HOST/PORT)`);
    }
    throw err;
  }
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

const sql = {
  usage: '"<query>" [--max-rows N] [--gateway URL]',
  summary: 'Runs one read-only statement (SELECT, WITH, EXPLAIN, DESCRIBE, SHOW TABLES) on the analytics tables; prints NDJSON rows, a summary on stderr.',
  async run(args: string[], io: CliIO) {
    const { values, positionals } = parse(args, { 'max-rows': { type: 'string' }, gateway: { type: 'string' } }, 1);
    const parsed = SqlRequest.safeParse({ query: positionals[0], maxRows: intOption(values['max-rows'], 'max-rows', 10_000) });
    if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const request = parsed.data;
    const config = loadConfig(io.env, projectDir);
    const result =
      (!config.clickhouse.url &&
        (await viaGateway<SqlResponse>(config, `${gatewayUrl(config, values.gateway)}/v1/analytics/sql`, { method: 'POST', body: JSON.stringify(request) }))) ||
      (await withDirect(config, true, (client) => runReadOnlySql(client, request, config.clickhouse.database)));
    for (const row of result.rows) io.out(JSON.stringify(Object.fromEntries(result.columns.map((c, i) => [c.name, row[i]]))));
    io.err(`${result.rowCount} row(s)${result.truncated ? ' (truncated: raise --max-rows or narrow the query)' : ''} in ${result.elapsedMs} ms`);
  },
};

const REPORT_FLAGS = ['from', 'to', 'granularity', 'conversation-id', 'period', 'k', 'offsets', 'limit', 'by'] as const;

const report = {
  usage: `<${ReportName.options.join('|')}> [--from ISO] [--to ISO] [--granularity minute|hour|day] [--conversation-id ID] [--period day|week|month] [--k N] [--offsets N] [--limit N] [--by hour|weekday-hour] [--gateway URL]`,
  summary: 'Prints a standard report as JSON (the same body as GET /v1/analytics/reports/<name>).',
  async run(args: string[], io: CliIO) {
    const options = Object.fromEntries([...REPORT_FLAGS, 'gateway'].map((f) => [f, { type: 'string' as const }]));
    const { values, positionals } = parse(args, options, 1);
    const name = ReportName.safeParse(positionals[0]);
    if (!name.success) throw new UsageError(`unknown report ${JSON.stringify(positionals[0])}; reports: ${ReportName.options.join(', ')}`);
    const params: Record<string, string> = {};
    for (const flag of REPORT_FLAGS) {
      const v = values[flag];
      if (typeof v === 'string') params[flag === 'conversation-id' ? 'conversationId' : flag] = v;
    }
    const query = parseReportQuery(name.data, params);
    const config = loadConfig(io.env, projectDir);
    const url = `${gatewayUrl(config, values.gateway as string | undefined)}/v1/analytics/reports/${name.data}?${new URLSearchParams(params)}`;
    const body =
      (!config.clickhouse.url && (await viaGateway<AnalyticsReport>(config, url, { method: 'GET' }))) ||
      (await withDirect(config, true, (client) => runReport({ client, database: config.clickhouse.database }, name.data, query)));
    printJson(io, body);
  },
};

const rebuild = {
  usage: '',
  summary: 'Empties every table derived from the log, so the next start of the platform ingests the log again from its first event. Stop the platform first.',
  async run(args: string[], io: CliIO) {
    parse(args, {}, 0);
    const config = loadConfig(io.env, projectDir);
    await withDirect(config, false, (client) => truncateDerivedTables(client, config.clickhouse.database));
    io.err(`analytics tables in ${config.clickhouse.database} emptied; the next platform start re-ingests the log`);
  },
};

export const analytics: CommandGroup = {
  summary: 'ClickHouse analytics: read-only SQL, standard reports, rebuild from the log.',
  commands: { sql, report, rebuild },
};
