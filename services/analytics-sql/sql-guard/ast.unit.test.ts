import { describe, expect, it } from 'vitest';
import { isAppError } from '../../runtime/errors.js';
import { parseAstDump, type AstNode } from './ast.js';

/** `EXPLAIN AST SELECT count() AS n FROM parley.events WHERE type = 'a' LIMIT 1`, as chDB prints it. */
const DUMP = [
  'SelectWithUnionQuery (children 1)',
  ' ExpressionList (children 1)',
  '  SelectQuery (children 4)',
  '   ExpressionList (children 1)',
  '    Function count (alias n) (children 1)',
  '     ExpressionList',
  '   TablesInSelectQuery (children 1)',
  '    TablesInSelectQueryElement (children 1)',
  '     TableExpression (children 1)',
  '      TableIdentifier parley.events',
  '   Function equals (children 1)',
  '    ExpressionList (children 2)',
  '     Identifier type',
  "     Literal 'a (children 3)'",
  '   Literal UInt64_1',
];

const refused = (lines: string[]) => {
  try {
    parseAstDump(lines);
  } catch (err) {
    if (isAppError(err, 'sql_rejected')) return true;
    throw err;
  }
  return false;
};

const walk = (n: AstNode, out: AstNode[] = []) => {
  out.push(n);
  for (const c of n.children) walk(c, out);
  return out;
};

describe('parseAstDump', () => {
  it('reads kinds, names, aliases and children', () => {
    const root = parseAstDump(DUMP);
    const nodes = walk(root);
    expect(nodes).toHaveLength(DUMP.length);
    expect(nodes.find((n) => n.kind === 'Function' && n.name === 'count')?.alias).toBe('n');
    expect(nodes.find((n) => n.kind === 'TableIdentifier')?.name).toBe('parley.events');
    // A literal's text never makes it a parent, whatever it contains.
    expect(nodes.find((n) => n.name === "'a (children 3)'")?.children).toEqual([]);
  });

  it('refuses names that are not plain words and malformed lines', () => {
    for (const line of [
      '    Function file (alias x y) (children 1)',
      '    Function fіle',
      '    Literal 1 (alias a b)',
      '\tIdentifier x',
      '    ',
      '    Function',
    ].map((l) => l)) {
      const lines = [...DUMP.slice(0, 4), line, ...DUMP.slice(5)];
      expect(refused(lines), line).toBe(true);
    }
  });

  // A quoted name with line breaks can add lines to the dump; it can never remove one.
  // Whatever line is added, wherever, at whatever depth and with whatever declared
  // children, the counts no longer hold and the dump is refused.
  it('refuses every dump with one or two injected lines', () => {
    const fakes = (depth: number) =>
      [
        'Identifier x',
        'Literal UInt64_1',
        'Function numbers (children 1)',
        'ExpressionList (children 2)',
        'SelectQuery (children 3)',
        'Function file (children 1)',
      ].map((l) => ' '.repeat(depth) + l);
    let cases = 0;
    for (let at = 1; at <= DUMP.length; at++) {
      for (let depth = 0; depth <= 8; depth++) {
        for (const fake of fakes(depth)) {
          const once = [...DUMP.slice(0, at), fake, ...DUMP.slice(at)];
          expect(refused(once), once.join('\n')).toBe(true);
          cases++;
          // and a second line right after, at every depth
          for (let d2 = 0; d2 <= 8; d2 += 2) {
            const twice = [...DUMP.slice(0, at), fake, ' '.repeat(d2) + 'Identifier y', ...DUMP.slice(at)];
            expect(refused(twice), twice.join('\n')).toBe(true);
            cases++;
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(1000);
  });

  it('refuses a second root, a skipped level and an empty dump', () => {
    expect(refused([...DUMP, 'SelectWithUnionQuery'])).toBe(true);
    expect(refused(['SelectWithUnionQuery (children 1)', '  ExpressionList'])).toBe(true);
    expect(refused([])).toBe(true);
  });
});
