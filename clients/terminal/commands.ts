/** What one typed line means. Pure: no I/O, so it is unit-tested on its own. */
export type TerminalCommand =
  | { kind: 'list' }
  | { kind: 'open'; target: string }
  | { kind: 'dm'; user: string }
  | { kind: 'group'; title: string; members: string[] }
  | { kind: 'history'; count: number }
  | { kind: 'read' }
  | { kind: 'who' }
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'send'; text: string }
  | { kind: 'empty' }
  | { kind: 'invalid'; message: string };

export const HISTORY_PAGE = 20;
const MAX_HISTORY_PAGE = 200;
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

export const HELP: readonly (readonly [string, string])[] = [
  ['/list', 'conversations, numbered, with unread counts and the last message'],
  ['/open <n|id|name>', 'open a conversation: its last 20 messages, then live ones'],
  ['/dm <user>', 'open (or start) the 1:1 with a user'],
  ['/group <title> <user...>', 'start a group ("quote" a title with spaces)'],
  ['/history [n]', `show n older messages of the open conversation (default ${HISTORY_PAGE})`],
  ['/read', 'mark the open conversation read'],
  ['/who', 'who has seen the last message'],
  ['/help', 'this list'],
  ['/quit', 'leave (Ctrl-D works too)'],
  ['<text>', 'send to the open conversation (start with // to send a line beginning with /)'],
];

/** Splits arguments on whitespace; "double" or 'single' quotes keep spaces. */
export function splitArgs(input: string): string[] | { error: string } {
  const args: string[] = [];
  let current = '';
  let quote: '"' | "'" | null = null;
  let inArg = false;
  for (const ch of input) {
    if (quote) {
      if (ch === quote) quote = null;
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inArg = true;
    } else if (/\s/u.test(ch)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += ch;
      inArg = true;
    }
  }
  if (quote) return { error: `unterminated ${quote} quote` };
  if (inArg) args.push(current);
  return args;
}

export function parseLine(line: string): TerminalCommand {
  if (line.trim() === '') return { kind: 'empty' };
  if (!line.startsWith('/')) return { kind: 'send', text: line };
  if (line.startsWith('//')) return { kind: 'send', text: line.slice(1) };

  const space = line.search(/\s/u);
  const name = (space < 0 ? line : line.slice(0, space)).slice(1).toLowerCase();
  const split = splitArgs(space < 0 ? '' : line.slice(space));
  if (!Array.isArray(split)) return { kind: 'invalid', message: split.error };
  const args = split;

  switch (name) {
    case 'list':
    case 'ls':
      return args.length === 0 ? { kind: 'list' } : usage('/list');
    case 'open':
    case 'o':
      return args.length === 1 ? { kind: 'open', target: args[0]! } : usage('/open <n|conversationId|name>');
    case 'dm': {
      if (args.length !== 1) return usage('/dm <user>');
      return USER_ID.test(args[0]!) ? { kind: 'dm', user: args[0]! } : badUser(args[0]!);
    }
    case 'group': {
      const [title, ...members] = args;
      if (!title || title.trim() === '' || members.length === 0) return usage('/group <title> <user...>');
      const bad = members.find((m) => !USER_ID.test(m));
      return bad !== undefined ? badUser(bad) : { kind: 'group', title, members: [...new Set(members)] };
    }
    case 'history': {
      if (args.length > 1) return usage('/history [n]');
      if (args.length === 0) return { kind: 'history', count: HISTORY_PAGE };
      const n = Number(args[0]);
      if (!Number.isInteger(n) || n < 1 || n > MAX_HISTORY_PAGE) return { kind: 'invalid', message: `/history takes a number from 1 to ${MAX_HISTORY_PAGE}` };
      return { kind: 'history', count: n };
    }
    case 'read':
      return args.length === 0 ? { kind: 'read' } : usage('/read');
    case 'who':
      return args.length === 0 ? { kind: 'who' } : usage('/who');
    case 'help':
    case '?':
      return { kind: 'help' };
    case 'quit':
    case 'exit':
    case 'q':
      return { kind: 'quit' };
    default:
      return { kind: 'invalid', message: `unknown command /${name}; /help lists the commands` };
  }
}

function usage(text: string): TerminalCommand {
  return { kind: 'invalid', message: `usage: ${text}` };
}

function badUser(id: string): TerminalCommand {
  return { kind: 'invalid', message: `"${id}" is not a user id (letters, digits, _ and -, up to 64)` };
}
