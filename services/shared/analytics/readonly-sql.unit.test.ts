import { describe, expect, it } from 'vitest';
import { isAppError } from '../errors.js';
import { assertReadOnlySql } from './readonly-sql.js';

function rejected(sql: string): string {
  try {
    assertReadOnlySql(sql);
  } catch (err) {
    if (isAppError(err, 'sql_rejected')) return err.message;
    throw err;
  }
  throw new Error(`accepted: ${sql}`);
}

describe('assertReadOnlySql', () => {
  it('accepts one read-only statement and drops a trailing semicolon', () => {
    expect(assertReadOnlySql('  SELECT 1; -- done; really')).toBe('SELECT 1');
    expect(assertReadOnlySql('with x as (select 1) select * from x')).toBe('with x as (select 1) select * from x');
    for (const sql of ['SHOW TABLES', 'DESCRIBE TABLE parley.events', 'EXPLAIN SELECT 1', 'SELECT format FROM t', "SELECT format('{}', 1)"]) expect(assertReadOnlySql(sql)).toBe(sql);
  });

  it('ignores semicolons and keywords inside literals, identifiers and comments', () => {
    const sql = `SELECT 'a;b', "c;d", \`e;f\`, $$DROP TABLE x;$$ /* ; INTO OUTFILE 'x' */ -- ;\n# ;\nFROM t`;
    expect(assertReadOnlySql(sql)).toBe(sql);
    expect(assertReadOnlySql("SELECT 'it''s; fine', 'back\\\\'; ")).toBe("SELECT 'it''s; fine', 'back\\\\'");
  });

  it('rejects writes, several statements, outfiles, FORMAT and outside table functions', () => {
    expect(rejected('DROP TABLE parley.events')).toMatch(/not DROP/);
    expect(rejected('insert into t values (1)')).toMatch(/not INSERT/);
    expect(rejected('-- just a comment')).toMatch(/empty/);
    expect(rejected('SELECT 1; SELECT 2')).toMatch(/one statement/);
    expect(rejected('SELECT 1;; ')).toMatch(/one statement/);
    expect(rejected("SELECT 1 INTO OUTFILE 'x'")).toMatch(/OUTFILE/);
    expect(rejected('SELECT 1 FORMAT CSV')).toMatch(/FORMAT/);
    expect(rejected("SELECT * FROM url('http://x', 'CSV')")).toMatch(/url\(\)/);
    expect(rejected("SELECT * FROM S3 ('s3://bucket/x')")).toMatch(/S3\(\)/);
    expect(rejected("SELECT 'unterminated")).toMatch(/unterminated/);
    expect(rejected('SELECT 1 /* open')).toMatch(/unterminated/);
  });
});
