import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { TestClient } from './support/ws-client.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WAIT_MS = 20_000; // generous: other test files share this machine's two cores

/** The terminal client as a user runs it, in a child process: type on stdin, read lines from stdout. */
class Terminal {
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly proc: ChildProcessWithoutNullStreams;
  private partial = '';
  private readonly listeners = new Set<() => void>();

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', 'clients/terminal/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: 'pipe',
    });
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
      for (const l of [...this.listeners]) l();
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  /** Keystrokes, without pressing enter. */
  type(text: string): void {
    this.proc.stdin.write(text);
  }

  /** Types a line and returns the index output after it starts at (pass to `waitFor`). */
  enter(line: string): number {
    const at = this.lines.length;
    this.proc.stdin.write(`${line}\n`);
    return at;
  }

  endInput(): void {
    this.proc.stdin.end();
  }

  /** Index of the first output line at or after `from` that matches. */
  waitFor(match: string | RegExp, from = 0, timeoutMs = WAIT_MS): Promise<number> {
    const find = () => this.lines.findIndex((l, i) => i >= from && (typeof match === 'string' ? l.includes(match) : match.test(l)));
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = find();
        if (i < 0) return false;
        this.listeners.delete(check);
        clearTimeout(timer);
        resolve(i);
        return true;
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`no line matching ${match} after line ${from} within ${timeoutMs} ms; output:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
      if (!check()) this.listeners.add(check);
    });
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill();
  }
}

let p: TestPlatform;
let bob: TestClient;
let direct: string;
let team: string;
let dataDir: string;
const terminals: Terminal[] = [];

function terminal(user: string): Terminal {
  const t = new Terminal(['--user', user, '--server', p.http, '--data-dir', dataDir]);
  terminals.push(t);
  return t;
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-terminal-'));
  p = await startTestPlatform({ env: { RATE_SENDS_PER_SECOND: '1000', RATE_FRAMES_PER_SECOND: '1000' } });
  bob = await TestClient.connect(p.ws, await p.token('bob'));
  team = (await bob.ok({ t: 'create', kind: 'group', title: 'Team 🚀', members: ['alice', 'carol'] })).conversationId;
  direct = (await bob.ok({ t: 'create', kind: 'direct', peer: 'alice' })).conversationId;
  for (let i = 1; i <= 25; i++) await bob.ok({ t: 'send', conversationId: direct, clientMsgId: `hist-${i}`, text: i === 25 ? 'msg 25 你好 👋🏽' : `msg ${i}` });
});

afterAll(async () => {
  for (const t of terminals) t.kill();
  await bob?.close();
  await p?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('the terminal client', () => {
  let alice: Terminal;

  it('signs in, lists conversations with unread counts, opens one with its last 20 messages and pages back', async () => {
    alice = terminal('alice');
    await alice.waitFor('signed in as alice · 2 conversations, 25 unread');

    let at = alice.enter('/list');
    const bobRow = alice.lines[await alice.waitFor(/^\s*\d+\. bob\s+25 unread\s+\[[-\d :]+\] bob: msg 25 你好 👋🏽$/, at)]!;
    await alice.waitFor(/^\s*\d+\. Team 🚀\s+\(no messages\)$/, at);
    const n = /^\s*(\d+)\./.exec(bobRow)![1]!;

    at = alice.enter(`/open ${n}`);
    const header = await alice.waitFor('── bob · 1:1 ──', at);
    const last = await alice.waitFor(/^\[[-\d :]+\] bob: msg 25 你好 👋🏽$/, header);
    const shown = alice.lines.slice(header + 1, last + 1);
    expect(shown[0]).toBe('» earlier messages: /history');
    expect(shown.slice(1).map((l) => l.replace(/^\[[-\d :]+\] /, ''))).toEqual([
      ...Array.from({ length: 19 }, (_, i) => `bob: msg ${i + 6}`),
      'bob: msg 25 你好 👋🏽',
    ]);

    at = alice.enter('/history 5');
    const end = await alice.waitFor('» that is the beginning of the conversation', at);
    expect(
      alice.lines
        .slice(at, end)
        .filter((l) => l.includes('bob: msg'))
        .map((l) => l.replace(/^\[[-\d :]+\] /, '')),
    ).toEqual(['bob: msg 1', 'bob: msg 2', 'bob: msg 3', 'bob: msg 4', 'bob: msg 5']);
  });

  it('sends (with typing signals), and shows live messages, typing, receipts and other conversations', async () => {
    // Keystrokes of a message line send a typing signal before the line is entered.
    const framesBefore = bob.frames.length;
    alice.type('hel');
    await bob.next((f) => f.t === 'typing' && f.userId === 'alice' && f.conversationId === direct, WAIT_MS, framesBefore);
    let at = alice.enter('lo from alice 你好 👋🏽');
    await bob.message(direct, 'hello from alice 你好 👋🏽', WAIT_MS);
    await alice.waitFor(/^\[[-\d :]+\] alice: hello from alice 你好 👋🏽$/, at);

    at = alice.lines.length;
    bob.sendRaw(JSON.stringify({ t: 'typing', id: 'ty1', conversationId: direct }));
    await alice.waitFor('  bob is typing…', at);
    const sent = await bob.ok({ t: 'send', conversationId: direct, clientMsgId: 'live-1', text: 'こんにちは 🎉 from bob' });
    await alice.waitFor(/^\[[-\d :]+\] bob: こんにちは 🎉 from bob$/, at);

    at = alice.lines.length;
    await bob.ok({ t: 'mark_read', conversationId: direct, seq: sent.seq });
    await alice.waitFor('  ✓ seen by bob', at);
    at = alice.enter('/who');
    await alice.waitFor('» last message seen by bob', at);

    const receiptsBefore = bob.frames.length;
    at = alice.enter('/read');
    await bob.next(
      (f) => f.t === 'receipt' && f.userId === 'alice' && f.kind === 'read' && f.conversationId === direct && f.seq >= sent.seq,
      WAIT_MS,
      receiptsBefore,
    );
    await alice.waitFor('» marked bob read', at);

    at = alice.lines.length;
    await bob.ok({ t: 'send', conversationId: team, clientMsgId: 'team-1', text: 'standup at 10 ☕' });
    await alice.waitFor('» [Team 🚀] bob: standup at 10 ☕', at);

    // The gateway drops every connection: the client reconnects, resumes, and shows what was sent meanwhile once.
    at = alice.lines.length;
    p.platform.gateway.sockets.disconnectAll();
    await alice.waitFor('» connection lost; reconnecting…', at);
    bob = await TestClient.connect(p.ws, await p.token('bob'));
    await bob.ok({ t: 'send', conversationId: direct, clientMsgId: 'outage-1', text: 'sent during the outage 🔌' });
    await alice.waitFor('» reconnected', at);
    await alice.waitFor(/bob: sent during the outage 🔌$/, at);
    await bob.ok({ t: 'send', conversationId: direct, clientMsgId: 'outage-2', text: 'and after it' });
    await alice.waitFor(/bob: and after it$/, at);
    expect(alice.lines.slice(at).filter((l) => l.includes('sent during the outage'))).toHaveLength(1);

    at = alice.enter('/dm carol');
    await alice.waitFor('── carol · 1:1 ──', at);
    await alice.waitFor('» no messages yet', at);
    at = alice.enter('/open nowhere');
    await alice.waitFor('! no conversation "nowhere": /list shows them', at);

    alice.enter('/quit');
    expect(await alice.exited).toBe(0);
    expect(fs.readFileSync(path.join(dataDir, 'terminal', 'alice.position'), 'utf8')).toMatch(/^p1\./);
  });

  it('resumes from the stored position after a restart: what was missed is summarised', async () => {
    await bob.ok({ t: 'send', conversationId: direct, clientMsgId: 'away-1', text: 'while you were out 🌙' });
    const again = terminal('alice');
    await again.waitFor('signed in as alice · 3 conversations');
    await again.waitFor('» while you were away: 1 new message (1 in bob)');
    const at = again.enter('/open bob');
    await again.waitFor(/^\[[-\d :]+\] bob: while you were out 🌙$/, at);
    again.endInput(); // end of input quits, like Ctrl-D
    expect(await again.exited).toBe(0);
    expect(again.stderr).toBe('');
  });
});
