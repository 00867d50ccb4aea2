import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ProcessIdentity } from '../ops/embedded/process-record.js';
import { pickFreePort } from '../ops/embedded/free-port.js';
import { killAll, processTree, stillRunning } from './support/process-tree.js';
import { api, TestClient } from './support/ws-client.js';

/**
 * The quick start as a user runs it: `npm start` (every role in one process
 * on the embedded nats-server, Postgres and chDB), driven from outside over
 * HTTP and WebSocket only, the way the black-box client suites drive it:
 * sign in, create a group, send, edit, react, mark read, go offline, resume
 * with the continuity answer, read history; then SIGTERM to npm stops every
 * process it started. The other e2e files run the same services in-process
 * on shared servers; this one proves the all-in-one default serves them.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-npm-start-'));
// Under root the embedded Postgres runs as `postgres`, which must traverse the data dir.
fs.chmodSync(dataDir, 0o711);

let child: ChildProcess | undefined;
let output = '';
let http = '';
let ws = '';
const clients: TestClient[] = [];
let tree: ProcessIdentity[] = [];

beforeAll(async () => {
  const port = await pickFreePort();
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.tmpdir(),
    PARLEY_DATA_DIR: dataDir,
    NATS_SERVER_BIN: inject('natsBinary'),
    PORT: String(port),
    NATS_PORT: String(await pickFreePort()),
    POSTGRES_PORT: String(await pickFreePort()),
    ANALYTICS_HTTP_PORT: String(await pickFreePort()),
    LOG_LEVEL: 'info',
  };
  // Its own process group, as a shell gives a foreground job.
  child = spawn('npm', ['start'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout!.on('data', (d) => (output += String(d)));
  child.stderr!.on('data', (d) => (output += String(d)));
  http = `http://127.0.0.1:${port}`;
  ws = `ws://127.0.0.1:${port}/v1/ws`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ok = await fetch(`${http}/healthz`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`npm start did not become healthy:\n${output.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  tree = processTree(child.pid!);
}, 150_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  if (child && child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
  killAll(tree);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function token(userId: string): Promise<string> {
  const res = await api(http, 'POST', '/v1/dev/token', undefined, { userId });
  expect(res.status).toBe(200);
  return res.body.token as string;
}

async function connect(userId: string, position?: string | null): Promise<TestClient> {
  const c = await TestClient.connect(ws, await token(userId), position);
  clients.push(c);
  return c;
}

describe('npm start, driven from outside', () => {
  it('serves a group conversation live, resumes a device with the continuity answer, and keeps history', async () => {
    const ann = await connect('ann');
    const bob = await connect('bob');
    const group = await ann.ok({ t: 'create', kind: 'group', title: 'quick start', members: ['bob'] });
    await bob.next((f) => f.t === 'event' && f.event.type === 'conversation.created' && f.event.data.conversationId === group.conversationId);

    const hello = await ann.ok({ t: 'send', conversationId: group.conversationId, clientMsgId: 'qs-1', text: 'hello from npm start' });
    await bob.next((f) => f.t === 'event' && f.event.type === 'message.sent' && f.event.data.messageId === hello.messageId);
    await ann.ok({ t: 'edit', conversationId: group.conversationId, messageId: hello.messageId, text: 'hello, edited' });
    await bob.ok({ t: 'react', conversationId: group.conversationId, messageId: hello.messageId, emoji: '👍' });
    await bob.ok({ t: 'mark_read', conversationId: group.conversationId, seq: hello.seq });
    await ann.next((f) => f.t === 'receipt' && f.userId === 'bob' && f.kind === 'read');

    // Bob goes offline at a known position; what Ann sends meanwhile comes back on resume, once and in order.
    await bob.next((f) => f.t === 'event' && f.event.type === 'reaction.added');
    const position = bob.position;
    await bob.close();
    const missed: string[] = [];
    for (let i = 0; i < 5; i++)
      missed.push((await ann.ok({ t: 'send', conversationId: group.conversationId, clientMsgId: `qs-away-${i}`, text: `while away ${i}` })).messageId);
    const back = await connect('bob', position);
    expect(back.frames.find((f) => f.t === 'synced')).toMatchObject({ status: 'complete' });
    const replayed = back.frames.filter((f) => f.t === 'event' && f.event.type === 'message.sent').map((f) => f.event.data.messageId);
    expect(replayed).toEqual(missed);

    // History over HTTP, newest first, with the edit applied.
    const bobToken = await token('bob');
    let history: { text: string }[] = [];
    const deadline = Date.now() + 20_000;
    while (history.length < 6 && Date.now() < deadline) {
      history = (await api(http, 'GET', `/v1/conversations/${group.conversationId}/messages?limit=50`, bobToken)).body.messages ?? [];
      if (history.length < 6) await new Promise((r) => setTimeout(r, 100));
    }
    expect(history.map((m) => m.text)).toEqual([...missed.map((_, i) => `while away ${4 - i}`), 'hello, edited']);
  }, 60_000);

  it('serves the web client at / (built on first request: nothing built is committed)', async () => {
    const page = await fetch(`${http}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Sign in');
    const script = await fetch(`${http}${html.match(/src="(\/app\.js\?v=[0-9a-f]+)"/)![1]}`);
    expect(script.status).toBe(200);
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
  }, 30_000);

  it('stops every process it started on SIGTERM to npm', async () => {
    expect(tree.length).toBeGreaterThan(2);
    child!.kill('SIGTERM');
    const deadline = Date.now() + 30_000;
    while (stillRunning(tree).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(stillRunning(tree).map((p) => p.pid)).toEqual([]);
  }, 40_000);
});
