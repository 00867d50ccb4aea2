import { AppError } from '../../runtime/errors.js';
import type { AstNode } from './ast.js';
import { ALLOWED_TABLE_FUNCTIONS, IN_FUNCTIONS, isAllowedFunction } from './functions.js';

/**
 * What an analyst's statement may contain, decided on ClickHouse's own parse
 * tree (see ast.ts). Everything is allow-listed: statement kinds, node kinds,
 * functions and tables; whatever is not named here is refused.
 */

export type StatementKind = 'select' | 'explain' | 'describe' | 'show_tables';

/** EXPLAIN variants that only parse, analyse or plan the (vetted) SELECT under them. */
const EXPLAIN_KINDS = new Set(['EXPLAIN', 'EXPLAIN AST', 'EXPLAIN SYNTAX', 'EXPLAIN QUERY TREE', 'EXPLAIN PLAN', 'EXPLAIN PIPELINE', 'EXPLAIN ESTIMATE']);

/** Node kinds that may appear inside an allowed statement. */
const NODE_KINDS = new Set([
  'SelectWithUnionQuery',
  'SelectIntersectExceptQuery',
  'SelectQuery',
  'ExpressionList',
  'Subquery',
  'WithElement',
  'TablesInSelectQuery',
  'TablesInSelectQueryElement',
  'TableExpression',
  'TableIdentifier',
  'TableJoin',
  'ArrayJoin',
  'Function',
  'Identifier',
  'Literal',
  'Asterisk',
  'QualifiedAsterisk',
  'ColumnsRegexpMatcher',
  'ColumnsListMatcher',
  'QualifiedColumnsRegexpMatcher',
  'QualifiedColumnsListMatcher',
  'ColumnsTransformerList',
  'ColumnsExceptTransformer',
  'OrderByElement',
  'WindowDefinition',
  'WindowListElement',
  'SampleRatio',
]);

/** Why a node kind is refused, for the ones people actually write. */
const REFUSED_KINDS: Record<string, string> = {
  Set: "SETTINGS clauses are not allowed: the session's settings are fixed",
  QueryParameter: 'query parameters ({name:Type}) are not supported; write the value in the query',
  ColumnsApplyTransformer: 'APPLY transformers are not allowed (they call functions by name); call the function on the columns',
  ColumnsReplaceTransformer: 'REPLACE transformers are not allowed; select the expressions explicitly',
};

export const STATEMENTS_TEXT = 'SELECT (with WITH, UNION, INTERSECT, EXCEPT), EXPLAIN of a SELECT, DESCRIBE TABLE and SHOW TABLES';

const reject = (message: string) => new AppError('sql_rejected', message);

export interface PolicyContext {
  /** The analytics database: the only one whose tables may be read. */
  database: string;
}

/** The root's kind, or a refusal naming what the statement is. */
export function statementKind(root: AstNode): StatementKind {
  switch (root.kind) {
    case 'SelectWithUnionQuery':
      return 'select';
    case 'Explain':
      return 'explain';
    case 'DescribeQuery':
      return 'describe';
    case 'ShowTables':
      return 'show_tables';
    default:
      throw reject(`only read-only statements are accepted (${STATEMENTS_TEXT}), not ${describeKind(root.kind)}`);
  }
}

/** `DropQuery` → `DROP`, `AlterQuery` → `ALTER`, `Set` → `SET`: what people wrote. */
export function describeKind(kind: string): string {
  return kind
    .replace(/Query$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toUpperCase();
}

/**
 * Checks a statement's tree; throws `sql_rejected` with the first problem.
 * SHOW TABLES is further limited by the caller on the formatted text, since
 * its node does not say which SHOW it is.
 */
export function checkStatement(root: AstNode, ctx: PolicyContext): StatementKind {
  const kind = statementKind(root);
  switch (kind) {
    case 'select':
      checkSelect(root, ctx);
      break;
    case 'explain':
      if (!EXPLAIN_KINDS.has(root.name))
        throw reject(`${root.name} is not allowed; use EXPLAIN [AST|SYNTAX|QUERY TREE|PLAN|PIPELINE|ESTIMATE] without options`);
      if (root.children.length !== 1 || root.children[0]!.kind !== 'SelectWithUnionQuery') throw reject('EXPLAIN takes one SELECT and no options');
      checkSelect(root.children[0]!, ctx);
      break;
    case 'describe': {
      const [table, ...rest] = root.children;
      if (!table || rest.length > 0 || table.kind !== 'TableExpression') throw reject('DESCRIBE takes one table or subquery and no settings');
      checkNode(table, ctx, undefined);
      break;
    }
    case 'show_tables':
      for (const child of root.children) {
        if (child.kind !== 'Identifier' || child.name !== ctx.database) throw reject(`SHOW TABLES lists the analytics database ${ctx.database} only`);
      }
      break;
  }
  return kind;
}

function checkSelect(node: AstNode, ctx: PolicyContext): void {
  checkNode(node, ctx, undefined);
}

function checkNode(node: AstNode, ctx: PolicyContext, parent: AstNode | undefined): void {
  if (!NODE_KINDS.has(node.kind)) throw reject(REFUSED_KINDS[node.kind] ?? `${describeKind(node.kind)} is not allowed in analytics SQL`);
  switch (node.kind) {
    case 'SelectWithUnionQuery':
      // Its only child is the list of SELECTs; more children are INTO OUTFILE, FORMAT or SETTINGS.
      if (node.children.length !== 1 || node.children[0]!.kind !== 'ExpressionList') {
        throw reject('FORMAT, INTO OUTFILE and SETTINGS clauses are not allowed: the endpoint chooses the output format');
      }
      break;
    case 'TableIdentifier':
      checkTable(node.name, ctx);
      break;
    case 'Function':
      if (parent?.kind === 'TableExpression') {
        if (!ALLOWED_TABLE_FUNCTIONS.has(node.name))
          throw reject(`table function ${node.name}() is not allowed; read the analytics tables (only numbers() generates rows)`);
      } else {
        checkFunction(node);
      }
      break;
  }
  for (const child of node.children) checkNode(child, ctx, node);
}

function checkFunction(node: AstNode): void {
  if (!isAllowedFunction(node.name)) throw reject(`function ${node.name}() is not allowed in analytics SQL (docs/analytics.md lists what is)`);
  if (IN_FUNCTIONS.has(node.name.toLowerCase())) {
    // in(x, set): the set must be a subquery or values; a name there is read as a table.
    const right = node.children[0]?.children[1];
    if (right?.kind === 'Identifier') throw reject(`IN ${right.name} reads a table by name; write IN (SELECT ...)`);
  }
}

/**
 * `db.table` must be in the analytics database. An unqualified name is a
 * WITH (CTE) name or a table of the session's current database, which the
 * read-only session sets to the analytics database.
 */
function checkTable(name: string, ctx: PolicyContext): void {
  const parts = name.split('.');
  if (parts.length === 1) return;
  if (parts.length === 2 && parts[0] === ctx.database) return;
  throw reject(`table ${name} is outside the analytics database; read ${ctx.database}.<table> (SHOW TABLES lists them)`);
}
