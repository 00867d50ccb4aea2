import { describe, expect, it } from 'vitest';
import type { ConversationSummary } from '../../contracts/index.js';
import { parseLine, splitArgs } from './commands.js';
import { parseOptions, positionFile, websocketUrl } from './options.js';
import { Renderer } from './render.js';
import { RENEW_BEFORE_MS, TerminalToken } from './token.js';
import { displayWidth, padEnd, sanitize, sanitizeLine, truncate } from './text.js';

describe('the terminal command parser', () => {
  it('reads every command, and sends anything else', () => {
    expect(parseLine('/list')).toEqual({ kind: 'list' });
    expect(parseLine('/open 3')).toEqual({ kind: 'open', target: '3' });
    expect(parseLine('/open d_abc')).toEqual({ kind: 'open', target: 'd_abc' });
    expect(parseLine('/dm bob')).toEqual({ kind: 'dm', user: 'bob' });
    expect(parseLine('/group "Night shift 🌙" bob carol bob')).toEqual({ kind: 'group', title: 'Night shift 🌙', members: ['bob', 'carol'] });
    expect(parseLine('/history')).toEqual({ kind: 'history', count: 20 });
    expect(parseLine('/history 5')).toEqual({ kind: 'history', count: 5 });
    expect(parseLine('/read')).toEqual({ kind: 'read' });
    expect(parseLine('/who')).toEqual({ kind: 'who' });
    expect(parseLine('/QUIT')).toEqual({ kind: 'quit' });
    expect(parseLine('你好 👋🏽 /not a command')).toEqual({ kind: 'send', text: '你好 👋🏽 /not a command' });
    expect(parseLine('//shrug')).toEqual({ kind: 'send', text: '/shrug' });
    expect(parseLine('   ')).toEqual({ kind: 'empty' });
  });

  it('answers mistakes with a message instead of sending them', () => {
    expect(parseLine('/nope')).toMatchObject({ kind: 'invalid', message: expect.stringContaining('unknown command /nope') });
    expect(parseLine('/open')).toMatchObject({ kind: 'invalid', message: expect.stringContaining('usage') });
    expect(parseLine('/dm bob carol')).toMatchObject({ kind: 'invalid' });
    expect(parseLine('/dm bob!')).toMatchObject({ kind: 'invalid', message: expect.stringContaining('not a user id') });
    expect(parseLine('/group Team')).toMatchObject({ kind: 'invalid' });
    expect(parseLine('/history 0')).toMatchObject({ kind: 'invalid' });
    expect(parseLine('/history lots')).toMatchObject({ kind: 'invalid' });
    expect(parseLine('/group "Team bob')).toMatchObject({ kind: 'invalid', message: 'unterminated " quote' });
  });

  it('splits quoted arguments', () => {
    expect(splitArgs(` a "b c" 'd "e"' ""`)).toEqual(['a', 'b c', 'd "e"', '']);
  });
});

describe('terminal text', () => {
  it('measures CJK and emoji as two columns, marks and joiners as none', () => {
    expect(displayWidth('abc')).toBe(3);
    expect(displayWidth('你好')).toBe(4);
    expect(displayWidth('こんにちは')).toBe(10);
    expect(displayWidth('한국어')).toBe(6);
    expect(displayWidth('👋🏽')).toBe(2);
    expect(displayWidth('👩‍👩‍👧')).toBe(2);
    expect(displayWidth('🇯🇵')).toBe(2);
    expect(displayWidth('☀️')).toBe(2);
    expect(displayWidth('e\u0301')).toBe(1);
    expect(displayWidth('a\u2068b\u2069')).toBe(2);
  });

  it('truncates by columns without splitting a grapheme', () => {
    expect(truncate('hello', 5)).toBe('hello');
    expect(truncate('hello world', 6)).toBe('hello…');
    expect(truncate('你好世界', 5)).toBe('你好…');
    expect(truncate('ab👩‍👩‍👧cd', 4)).toBe('ab…');
    expect(truncate('ab👩‍👩‍👧cd', 5)).toBe('ab👩‍👩‍👧…');
    expect(padEnd('你好', 6)).toBe('你好  ');
  });

  it('removes what a terminal would interpret, keeps text as it is otherwise', () => {
    expect(sanitize('red \u001b[31mtext\u0007')).toBe('red \uFFFD[31mtext\uFFFD');
    expect(sanitize('a\r\nb\rc')).toBe('a\nb\nc');
    expect(sanitize('\u202Efdp.exe')).toBe('\uFFFDfdp.exe');
    expect(sanitize('שלום 👋 \u2067x\u2069')).toBe('שלום 👋 \u2067x\u2069');
    expect(sanitizeLine('one\ntwo\tthree')).toBe('one ⏎ two three');
  });
});

describe('terminal rendering', () => {
  const now = new Date(2026, 0, 15, 12, 0);
  const r = new Renderer(
    'alice',
    undefined,
    () => 80,
    () => now,
  );

  it('renders messages as plain lines, continuation lines indented, tombstones without text', () => {
    const at = new Date(2026, 0, 15, 9, 5).getTime();
    expect(r.message({ seq: 1, senderId: 'bob', text: '你好 👋\nsecond line', at })).toEqual(['[09:05] bob: 你好 👋', '    second line']);
    expect(r.message({ seq: 2, senderId: 'bob', text: '', at, status: 'recalled' })).toEqual(['[09:05] bob: (message recalled)']);
    expect(
      r.message({ seq: 3, senderId: 'bob', text: 'x', at: new Date(2026, 0, 14, 23, 59).getTime(), editedAt: at, reactions: [{ emoji: '👍', count: 2 }] }),
    ).toEqual(['[2026-01-14 23:59] bob: x (edited) 👍2']);
  });

  it('renders a conversation row with its unread count and a preview cut to the terminal width', () => {
    const c = {
      conversationId: 'g_1',
      kind: 'group',
      title: '团队 Team',
      peer: null,
      unread: 3,
      mentions: 0,
      pinned: false,
      mutedUntil: null,
      lastMessage: { senderId: 'bob', text: '明天见 '.repeat(20), at: now.getTime(), status: 'active' },
    } as unknown as ConversationSummary;
    const row = r.conversation(2, c);
    expect(row).toBe(` 2. 团队 Team${' '.repeat(13)}3 unread   [12:00] bob: ${'明天见 '.repeat(4)}…`);
    expect(displayWidth(row)).toBeLessThanOrEqual(80);
  });
});

describe('terminal options', () => {
  it('reads the flags, with defaults from the environment', () => {
    expect(parseOptions(['--user', 'alice'], {})).toMatchObject({ user: 'alice', server: 'http://127.0.0.1:8080', token: null, color: null });
    expect(parseOptions(['-u', 'alice', '-s', 'ws://h:9/', '--data-dir', '/tmp/x', '--no-color'], {})).toMatchObject({
      server: 'http://h:9',
      dataDir: '/tmp/x',
      color: false,
    });
    expect(parseOptions(['--user', 'alice'], { PARLEY_DATA_DIR: '/var/parley', PARLEY_SERVER: 'https://chat.example' })).toMatchObject({
      dataDir: '/var/parley',
      server: 'https://chat.example',
    });
    expect(parseOptions(['--help'], {})).toEqual({ help: true });
  });

  it('takes the user from a token, and refuses a token of someone else', () => {
    const jwt = (sub: string) => `e30.${Buffer.from(JSON.stringify({ sub })).toString('base64url')}.sig`;
    expect(parseOptions(['--token', jwt('carol')], {})).toMatchObject({ user: 'carol' });
    expect(parseOptions(['--user', 'alice', '--token', jwt('carol')], {})).toEqual({ error: 'the token is for carol, not alice' });
  });

  it('refuses mistakes', () => {
    expect(parseOptions([], {})).toEqual({ error: '--user is required' });
    expect(parseOptions(['--user', '../etc'], {})).toMatchObject({ error: expect.stringContaining('not a user id') });
    expect(parseOptions(['--user', 'a', '--server', 'ftp://x'], {})).toMatchObject({ error: expect.stringContaining('http') });
    expect(parseOptions(['--user', 'a', '--bogus'], {})).toMatchObject({ error: expect.stringContaining('bogus') });
  });

  it('derives the WebSocket address and the position file', () => {
    expect(websocketUrl('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/v1/ws');
    expect(websocketUrl('https://chat.example')).toBe('wss://chat.example/v1/ws');
    expect(positionFile('/d', 'alice')).toBe('/d/terminal/alice.position');
  });
});

describe('the terminal sign-in token', () => {
  it('mints a dev token once and keeps it until a minute before it expires (expiresAt in milliseconds)', async () => {
    let now = 1_800_000_000_000;
    let minted = 0;
    // What POST /v1/dev/token answers: expiresAt in milliseconds, a day ahead.
    const mint = async () => ({ token: `t${++minted}`, userId: 'ann', expiresAt: now + 86_400_000 });
    const token = new TerminalToken(mint, null, () => now);
    expect(await Promise.all([token.get(), token.get(), token.get()])).toEqual(['t1', 't1', 't1']);
    now += 86_400_000 - RENEW_BEFORE_MS - 1;
    expect(await token.get()).toBe('t1');
    now += 2;
    expect(await token.get()).toBe('t2');
    expect(minted).toBe(2);
  });

  it('uses a given token as it is, never minting', async () => {
    const token = new TerminalToken(async () => {
      throw new Error('must not mint');
    }, 'given.jwt');
    expect(await token.get()).toBe('given.jwt');
  });
});
