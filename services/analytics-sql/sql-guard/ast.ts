import { AppError } from '../../runtime/errors.js';

/**
 * Reads the tree ClickHouse prints for `EXPLAIN AST <query>`: one node per
 * line, indented one space per level,
 *
 *   Function equals (alias same) (children 1)
 *    ExpressionList (children 2)
 *     Identifier type
 *     Literal 'message.sent'
 *
 * The dump does not quote names, so a quoted identifier holding a newline
 * (`` `a\n Function file` ``) prints extra lines of the sender's choosing.
 * Two rules make that harmless: every line must match the strict grammar
 * below (names are plain words), and every node must have exactly the
 * number of children it declares. Why that suffices: the root line carries
 * no name, so it is real and the lines at depth 1 are exactly its declared
 * children; a name with a newline can only add lines, and can only move its
 * own line's "(children n)" onto a later line (lowering its level's total),
 * so at each depth in turn the real lines already use up every declared
 * child and an added line has nowhere to hang. Any dump with an added line
 * fails the counts and is refused (ast.unit.test.ts tries thousands).
 */

export interface AstNode {
  /** `SelectQuery`, `Function`, `TableIdentifier`, `Literal`, `Explain`... */
  kind: string;
  /** Function or identifier name (`parley.events`), the EXPLAIN kind, or a literal's text. */
  name: string;
  alias: string | undefined;
  children: AstNode[];
  /** The line as printed, for messages. */
  line: string;
}

const WORD = '[A-Za-z_][A-Za-z0-9_]*';
const NAME = `${WORD}(?:\\.${WORD})*`;
/** `Kind [name] [(alias a)] [(children n)]` for every node but the two below. */
const GENERIC = new RegExp(`^([A-Za-z]+)(?: (${NAME}))?(?: \\(alias (${WORD})\\))?(?: \\(children (\\d+)\\))?$`);
/**
 * Literals print their value (strings quoted and escaped by ClickHouse, so on
 * one line), then maybe an alias; they have no children.
 */
const LITERAL = /^Literal (.+?)(?: \(alias (.*)\))?$/;
const ALIAS = new RegExp(`^${WORD}$`);
const SAMPLE = /^SampleRatio ([0-9 ./]+)$/;
const EXPLAIN = /^Explain (EXPLAIN(?: [A-Z]+)*)(?: \(children (\d+)\))?$/;

const unreadable = (line: string) =>
  new AppError(
    'sql_rejected',
    `the parsed query has a name that is not a plain word (letters, digits, _; write aliases without spaces or quotes): ${JSON.stringify(line.trim().slice(0, 120))}`,
  );

interface Parsed {
  node: AstNode;
  depth: number;
  declared: number;
}

function parseLine(raw: string): Parsed {
  const depth = raw.length - raw.trimStart().length;
  const text = raw.slice(depth);
  if (raw.slice(0, depth).replaceAll(' ', '') !== '') throw unreadable(raw);
  const make = (kind: string, name: string, alias: string | undefined, declared: number): Parsed => ({
    node: { kind, name, alias, children: [], line: text },
    depth,
    declared,
  });
  const literal = LITERAL.exec(text);
  if (literal) {
    if (literal[2] !== undefined && !ALIAS.test(literal[2])) throw unreadable(raw);
    return make('Literal', literal[1]!, literal[2], 0);
  }
  const sample = SAMPLE.exec(text);
  if (sample) return make('SampleRatio', sample[1]!, undefined, 0);
  const explain = EXPLAIN.exec(text);
  if (explain) return make('Explain', explain[1]!, undefined, Number(explain[2] ?? 0));
  const m = GENERIC.exec(text);
  if (!m) throw unreadable(raw);
  return make(m[1]!, m[2] ?? '', m[3], Number(m[4] ?? 0));
}

/** Builds the tree from the dump's lines; throws `sql_rejected` unless they form exactly one consistent tree. */
export function parseAstDump(lines: readonly string[]): AstNode {
  const content = lines.filter((l) => l !== '');
  if (content.length === 0) throw new AppError('sql_rejected', 'ClickHouse returned no parse tree for the query');
  const stack: Parsed[] = [];
  let root: Parsed | undefined;
  const close = (p: Parsed) => {
    if (p.node.children.length !== p.declared)
      throw new AppError('sql_rejected', 'the parsed query does not read back as one tree (a quoted name with a line break?)');
  };
  for (const raw of content) {
    const parsed = parseLine(raw);
    while (stack.length > 0 && stack[stack.length - 1]!.depth >= parsed.depth) close(stack.pop()!);
    if (stack.length === 0) {
      if (root || parsed.depth !== 0) throw new AppError('sql_rejected', 'the parsed query does not read back as one tree (a quoted name with a line break?)');
      root = parsed;
    } else {
      const parent = stack[stack.length - 1]!;
      if (parsed.depth !== parent.depth + 1)
        throw new AppError('sql_rejected', 'the parsed query does not read back as one tree (a quoted name with a line break?)');
      parent.node.children.push(parsed.node);
    }
    stack.push(parsed);
  }
  while (stack.length > 0) close(stack.pop()!);
  return root!.node;
}
