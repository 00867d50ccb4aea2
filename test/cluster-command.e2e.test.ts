import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { ProcessIdentity } from '../ops/embedded/process-record.js';
import { commandOf, killAll, processTree, stillRunning } from './support/process-tree.js';
import { api, TestClient } from './support/ws-client.js';

/**
 * `npm run cluster` end to end: three nats-servers, Postgres and two gateway
 * processes come up; a client on either gateway sees the other's messages
 * live; Ctrl-C (SIGINT to the foreground process group) stops every one of
 * those processes.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-cluster-cmd-'));
// Under root the embedded Postgres runs as `postgres`, which must traverse the data dir.
fs.chmodSync(dataDir, 0o711);

let child: ChildProcess | undefined;
let tree: ProcessIdentity[] = [];
const clients: TestClient[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  if (child && child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
  killAll(tree);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A base port with base..base+2 and their route ports (+2000) free. */
async function freeBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const all = [0, 1, 2, 2000, 2001, 2002].map((d) => base + d);
    if ((await Promise.all(all.map(portFree))).every(Boolean)) return base;
  }
  throw new Error('no free port range');
}

async function freePort(): Promise<number> {
  for (;;) {
    const p = 20_000 + Math.floor(Math.random() * 20_000);
    if ((await portFree(p)) && (await portFree(p + 1))) return p;
  }
}

describe('npm run cluster', () => {
  it('runs two gateways on a 3-node NATS cluster, delivers across them live, and stops everything on Ctrl-C', async () => {
    const natsBase = await freeBase();
    const gatewayPort = await freePort();
    const env = {
      PATH: process.env.PATH ?? '',
      PARLEY_DATA_DIR: dataDir,
      NATS_PORT: String(natsBase),
      NATS_SERVER_BIN: inject('natsBinary'),
      POSTGRES_PORT: '0',
      PORT: String(gatewayPort),
      LOG_LEVEL: 'info',
    };
    // Its own process group, as a shell gives a foreground job: the group is what Ctrl-C signals.
    child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'ops', 'cluster.ts')], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));

    const deadline = Date.now() + 100_000;
    while (!output.includes('"msg":"parley cluster is up"')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`cluster did not come up:\n${output.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    tree = processTree(child.pid!);
    const commands = tree.map((p) => commandOf(p.pid));
    expect(commands.filter((c) => c.includes('nats-server'))).toHaveLength(3);
    expect(commands.filter((c) => c.includes('ops/start.ts'))).toHaveLength(2);
    expect(commands.some((c) => /postgres/.test(c))).toBe(true);

    const gw1 = `http://127.0.0.1:${gatewayPort}`;
    const gw2 = `http://127.0.0.1:${gatewayPort + 1}`;
    for (const gw of [gw1, gw2]) expect((await api(gw, 'GET', '/healthz')).status).toBe(200);
    // One secret for both: a token from gateway 1 works on gateway 2.
    const token = async (userId: string) => (await api(gw1, 'POST', '/v1/dev/token', undefined, { userId })).body.token as string;
    const alice = await TestClient.connect(`${gw1.replace('http', 'ws')}/v1/ws`, await token('alice'));
    const bob = await TestClient.connect(`${gw2.replace('http', 'ws')}/v1/ws`, await token('bob'));
    clients.push(alice, bob);
    const conv = (await api(gw2, 'POST', '/v1/conversations', await token('bob'), { kind: 'direct', peer: 'alice' })).body;
    const id = conv.conversationId as string;
    await Promise.all([alice.joined(id), bob.joined(id)]);
    const a = await alice.send(id, 'via 8080');
    expect((await bob.message(id, 'via 8080')).seq).toBe(a.result.seq);
    const b = await bob.send(id, 'via 8081');
    expect((await alice.message(id, 'via 8081')).seq).toBe(b.result.seq);
    await Promise.all(clients.map((c) => c.close()));

    process.kill(-child.pid!, 'SIGINT');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
    expect(code, output.slice(-3000)).toBe(0);
    for (let i = 0; i < 50 && stillRunning(tree).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(stillRunning(tree).map((p) => commandOf(p.pid))).toEqual([]);
  }, 150_000);
});
