import { AppError } from '../errors.js';

/**
 * First line of defence for analysts' SQL: exactly one statement, starting
 * with a read-only keyword, with nothing that writes outside the database
 * (INTO OUTFILE, which chDB honours even in readonly mode) or reaches other
 * systems (file, url, s3, remote... table functions). The second line is the
 * session itself: queries run in a ClickHouse session with readonly=1 (chDB)
 * or readonly=2 (server), where INSERT, DDL and SET fail whatever the text.
 *
 * The scan skips string literals, quoted identifiers, heredocs and comments,
 * so a `;` or a keyword inside them does not count.
 */

const ALLOWED_FIRST = new Set(['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXPLAIN', 'EXISTS']);

/** Table functions and functions that read files or reach other systems. */
const OUTSIDE_FUNCTIONS = new Set([
  'file', 'filecluster', 'url', 'urlcluster', 's3', 's3cluster', 'gcs', 'oss', 'cosn', 'hdfs', 'hdfscluster', 'azureblobstorage',
  'azureblobstoragecluster', 'remote', 'remotesecure', 'cluster', 'clusterallreplicas', 'mysql', 'postgresql', 'mongodb', 'redis',
  'sqlite', 'odbc', 'jdbc', 'executable', 'executablepool', 'iceberg', 'icebergs3', 'deltalake', 'hudi', 'input', 'ytsaurus', 'arrowflight',
]);

interface Word {
  text: string;
  /** Next significant character after the word ('' at the end). */
  next: string;
}

/** Significant words and semicolon positions of a statement, outside literals and comments. */
function scan(sql: string): { words: Word[]; semicolons: number[]; trailingFrom: number[] } {
  const words: Word[] = [];
  const semicolons: number[] = [];
  const trailingFrom: number[] = [];
  let i = 0;
  const n = sql.length;
  const skipQuoted = (quote: string) => {
    i++;
    while (i < n && sql[i] !== quote) i += sql[i] === '\\' ? 2 : 1;
    if (i >= n) throw new AppError('sql_rejected', `unterminated ${quote === "'" ? 'string literal' : 'quoted identifier'}`);
    i++;
  };
  while (i < n) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`') skipQuoted(c);
    else if ((c === '-' && sql[i + 1] === '-') || c === '#') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw new AppError('sql_rejected', 'unterminated comment');
      i = end + 2;
    } else if (c === '$' && /^\$[A-Za-z_]*\$/.test(sql.slice(i, i + 66))) {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i, i + 66))![0];
      const end = sql.indexOf(tag, i + tag.length);
      if (end < 0) throw new AppError('sql_rejected', 'unterminated heredoc string');
      i = end + tag.length;
    } else if (c === ';') {
      semicolons.push(i);
      trailingFrom.push(words.length);
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < n && /[A-Za-z0-9_]/.test(sql[i]!)) i++;
      let j = i;
      while (j < n && /\s/.test(sql[j]!)) j++;
      words.push({ text: sql.slice(start, i), next: sql[j] ?? '' });
    } else i++;
  }
  return { words, semicolons, trailingFrom };
}

/**
 * Returns the statement without a trailing semicolon, or throws
 * `sql_rejected` saying what is not allowed.
 */
export function assertReadOnlySql(sql: string): string {
  const { words, semicolons, trailingFrom } = scan(sql);
  const first = words[0]?.text.toUpperCase();
  if (!first) throw new AppError('sql_rejected', 'the query is empty');
  if (!ALLOWED_FIRST.has(first)) {
    throw new AppError('sql_rejected', `only read-only statements are accepted (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN), not ${first}`);
  }
  // One statement: a semicolon may only end it, with nothing significant after it.
  if (semicolons.length > 1 || (semicolons.length === 1 && trailingFrom[0] !== words.length)) {
    throw new AppError('sql_rejected', 'send one statement at a time');
  }
  for (let k = 0; k < words.length; k++) {
    const w = words[k]!;
    const upper = w.text.toUpperCase();
    if (upper === 'INTO' && words[k + 1]?.text.toUpperCase() === 'OUTFILE') throw new AppError('sql_rejected', 'INTO OUTFILE is not allowed');
    // FORMAT is the last clause: `FORMAT <name>` at the end, not a column called format.
    if (upper === 'FORMAT' && k === words.length - 2 && w.next !== '(') throw new AppError('sql_rejected', 'FORMAT is chosen by the endpoint; remove the FORMAT clause');
    if (w.next === '(' && OUTSIDE_FUNCTIONS.has(w.text.toLowerCase())) {
      throw new AppError('sql_rejected', `${w.text}() reads files or other systems and is not allowed`);
    }
  }
  return (semicolons.length === 1 ? sql.slice(0, semicolons[0]) : sql).trim();
}
