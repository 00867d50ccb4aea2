import type { ClickHouseClient } from '@clickhouse/client';
import { AppError } from '../../runtime/errors.js';
import { parseAstDump } from './ast.js';
import { execText } from './exec.js';
import { checkStatement, describeKind, STATEMENTS_TEXT, type StatementKind } from './policy.js';
import { ANALYST_LIMITS } from './settings.js';

/**
 * The one check analysts' SQL passes before it runs, whoever sends it (the
 * HTTP endpoint, the CLI, a ClickHouse-protocol endpoint): decided on
 * ClickHouse's own parse of the query, never on its text.
 *
 * 1. `formatQuerySingleLine(q)`, with q bound as a parameter (never spliced
 *    into SQL): the engine's parser proves q is ONE statement (it refuses
 *    multi-statements) and prints it in canonical form: no comments, quoting
 *    and case of keywords normalised, operators spelled as functions.
 * 2. `EXPLAIN AST <canonical>`: the parse tree, read back by ast.ts.
 * 3. policy.ts walks the tree with allow-lists of statement kinds, node
 *    kinds, functions and tables.
 * 4. The canonical text, the very text whose tree was checked, is what runs,
 *    on the read-only session (settings.ts), which is the second layer.
 *
 * Both engine calls run on the read-only session too, so even a parser
 * surprise cannot write or change a setting. Anything refused is an
 * AppError `sql_rejected`; nothing here throws anything else for bad input.
 */

export interface VettedSql {
  /** The canonical statement to run, on the read-only session. */
  query: string;
  kind: StatementKind;
  /** The output format a trailing FORMAT clause asked for (only with `GuardOptions.formats`); it is no longer in `query`. */
  format?: string;
  /** Settings the session it runs on must have (createReadOnlyAnalyticsClient applies them). */
  settings: typeof ANALYST_LIMITS;
}

export interface GuardOptions {
  /** The analytics database: the only one whose tables may be read. */
  database: string;
  /**
   * Values of `{name:Type}` parameters (the ClickHouse HTTP interface's
   * `param_<name>`). Without them a parameter is refused. With them the tree
   * checked is the one the engine prints with the values substituted, exactly
   * as it substitutes them when the statement runs with the same values: a
   * parameter of type Identifier naming a table is checked like a written one.
   */
  params?: Record<string, string | null>;
  /**
   * Output formats a trailing `FORMAT <name>` clause may choose (the
   * ClickHouse-compatible endpoint). The clause is cut off the canonical text
   * and the rest is vetted as usual; without this option FORMAT is refused.
   */
  formats?: ReadonlyMap<string, string>;
}

/** A ClickHouse exception (`Code: N. DB::Exception: ...`), as opposed to our own failures. */
export function clickhouseErrorMessage(err: unknown): string | null {
  const e = err as { type?: unknown; message?: unknown };
  if (typeof e?.message !== 'string' || !(e.type !== undefined || /DB::Exception|Code: \d+/.test(e.message))) return null;
  return e.message.replace(/\s+/g, ' ').slice(0, 2000);
}

const ROOTS = new Set(['SelectWithUnionQuery', 'Explain', 'DescribeQuery', 'ShowTables']);
/** The canonical forms of the only SHOW accepted (ShowTables nodes also stand for SHOW DATABASES, SETTINGS, ...). */
const SHOW_TABLES = /^SHOW TABLES(?: FROM ([A-Za-z_][A-Za-z0-9_]*))?(?: (?:NOT )?I?LIKE '(?:[^'\\]|\\.)*')?$/;

async function engine<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof AppError) throw err;
    const message = clickhouseErrorMessage(err);
    if (message === null) throw err;
    const clean = message.replace(/: In scope SELECT formatQuerySingleLine.*$/, '');
    if (/\(READONLY\)|readonly mode/i.test(clean))
      throw new AppError('sql_rejected', `SETTINGS clauses are not allowed: the session's settings are fixed (${clean})`, { cause: err });
    throw new AppError('sql_rejected', `ClickHouse cannot ${what} the query: ${clean}`, { cause: err });
  }
}

/** Returns the statement to run, or throws `sql_rejected` saying what is not allowed. */
export async function vetAnalyticsSql(client: ClickHouseClient, sql: string, options: GuardOptions): Promise<VettedSql> {
  if (sql.trim() === '') throw new AppError('sql_rejected', 'the query is empty');
  const canonical = await engine('parse', async () => {
    const rs = await client.query({ query: 'SELECT formatQuerySingleLine({q:String}) AS f', query_params: { q: sql }, format: 'JSONEachRow' });
    const [row] = await rs.json<{ f: string }>();
    return row?.f ?? '';
  });
  if (canonical.trim() === '') throw new AppError('sql_rejected', 'the query is empty');
  const { text: query, format } = options.formats ? splitFormat(canonical, options.formats) : { text: canonical, format: undefined };
  const lines = await engine('parse', async () => {
    const text = await execText(client, `EXPLAIN AST ${query}`, 'JSONEachRow', undefined, options.params);
    try {
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => (JSON.parse(l) as { explain: string }).explain);
    } catch (err) {
      throw new AppError('sql_rejected', 'the parse tree of the query could not be read', { cause: err });
    }
  });
  // Name the statement before reading the whole tree: DDL and the like print names the reader refuses.
  const rootKind = /^([A-Za-z]+)/.exec(lines[0] ?? '')?.[1] ?? '';
  if (!ROOTS.has(rootKind))
    throw new AppError('sql_rejected', `only read-only statements are accepted (${STATEMENTS_TEXT}), not ${describeKind(rootKind) || 'this'}`);
  const kind = checkStatement(parseAstDump(lines), options);
  if (kind === 'show_tables') {
    const m = SHOW_TABLES.exec(query);
    if (!m || (m[1] !== undefined && m[1] !== options.database)) {
      throw new AppError('sql_rejected', `of the SHOW statements only SHOW TABLES [FROM ${options.database}] [LIKE '...'] is accepted`);
    }
  }
  return { query, kind, ...(format ? { format } : {}), settings: ANALYST_LIMITS };
}

/** The canonical text ends with ` FORMAT <name>` exactly when it has a FORMAT clause (formatQuerySingleLine prints it last). */
const TRAILING_FORMAT = /^(.*) FORMAT ([A-Za-z][A-Za-z0-9]*)$/s;

/**
 * Cuts a trailing FORMAT clause off the canonical text. Safe whatever the
 * text is: the rest is parsed and checked on its own (a FORMAT, SETTINGS or
 * INTO OUTFILE left in it is refused) and is what runs; the name only picks
 * an output format from the allow-list (`formats`: lower-case name to the
 * engine's spelling).
 */
function splitFormat(canonical: string, formats: ReadonlyMap<string, string>): { text: string; format: string | undefined } {
  const m = TRAILING_FORMAT.exec(canonical);
  if (!m) return { text: canonical, format: undefined };
  const format = formats.get(m[2]!.toLowerCase());
  if (!format) throw new AppError('sql_rejected', `FORMAT ${m[2]} is not offered here (formats: ${[...new Set(formats.values())].join(', ')})`);
  return { text: m[1]!, format };
}

export { ALLOWED_FUNCTION_NAMES, ALLOWED_TABLE_FUNCTIONS, isAllowedFunction, PARSER_FUNCTION_NAMES } from './functions.js';
export { ANALYST_LIMITS, ANALYST_READONLY } from './settings.js';
export type { StatementKind } from './policy.js';
