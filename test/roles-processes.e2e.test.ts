import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { pickFreePort } from '../ops/embedded/free-port.js';
import type { ProcessIdentity } from '../ops/embedded/process-record.js';
import { createDatabase, TEST_JWT_SECRET, uniqueNamespace } from './support/platform.js';
import { killAll, processTree, stillRunning } from './support/process-tree.js';
import { api, TestClient } from './support/ws-client.js';

/**
 * Parley as separate processes against the test's nats-server and Postgres,
 * each started the ways an operator would: `parley start --roles workers`
 * (two of them: one active, one standby), `services/gateway/main.ts`, and
 * `ops/start.ts` with PARLEY_ROLES=gateway. Messages sent on one gateway
 * reach a client of the other live and are in history (projected by the
 * workers process). The active workers process is then frozen (SIGSTOP):
 * the standby takes over once its lease lapses, and the thawed one stands by.
 * Then the new holder is killed (kill -9): both run on this machine, so the
 * standby sees the holder's process is gone and takes over at its next
 * attempt instead of waiting for the lapse (services/leases/role-lease.ts).
 * History has every message exactly once throughout.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TTL_SECONDS = 2;
const namespace = uniqueNamespace('roles');
const databaseUrl = await createDatabase(namespace);
const dataDirs: string[] = [];
const started: Proc[] = [];
const seen: ProcessIdentity[] = [];
const clients: TestClient[] = [];

interface Proc {
  name: string;
  child: ChildProcess;
  port: number;
  output: string[];
  base: string;
}

async function startProcess(name: string, args: string[], env: Record<string, string> = {}): Promise<Proc> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `parley-roles-${name}-`));
  dataDirs.push(dataDir);
  const port = await pickFreePort();
  const output: string[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NATS_URL: inject('natsUrl'),
      DATABASE_URL: databaseUrl,
      PARLEY_NAMESPACE: namespace,
      // Each process its own chDB (one data directory per process).
      PARLEY_DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: String(port),
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      AUTH_DEV_TOKENS: 'true',
      ROLE_LEASE_TTL_SECONDS: String(TTL_SECONDS),
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (c: Buffer) => output.push(...c.toString().split('\n').filter(Boolean)));
  const proc = { name, child, port, output, base: `http://127.0.0.1:${port}` };
  started.push(proc);
  return proc;
}

async function health(p: Proc): Promise<{ status: number; roles: string }> {
  const res = await fetch(`${p.base}/healthz`).catch(() => null);
  if (!res) return { status: 0, roles: '' };
  const body = (await res.json().catch(() => ({}))) as { checks?: { roles?: { detail?: string } } };
  return { status: res.status, roles: body.checks?.roles?.detail ?? '' };
}

async function untilHealthy(p: Proc, timeoutMs = 40_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p.child.exitCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode}):\n${p.output.slice(-15).join('\n')}`);
    const h = await health(p);
    if (h.status === 200) {
      if (p.child.pid) seen.push(...processTree(p.child.pid));
      return h.roles;
    }
    await sleep(100);
  }
  throw new Error(`${p.name} not healthy in time:\n${p.output.slice(-15).join('\n')}`);
}

async function token(p: Proc, userId: string): Promise<string> {
  const r = await api(p.base, 'POST', '/v1/dev/token', undefined, { userId });
  return r.body.token as string;
}

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  // A clean stop first (each releases its leases and node id); whatever is left after 10 s is killed.
  for (const p of started) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
    p.child.kill('SIGCONT'); // a test that failed while one was frozen
    p.child.kill('SIGTERM');
  }
  const deadline = Date.now() + 10_000;
  while (stillRunning(seen).length > 0 && Date.now() < deadline) await sleep(50);
  killAll(seen);
  await Promise.all(dataDirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

describe('roles as separate processes', () => {
  it('two gateways and a workers process (with a standby) serve one deployment; a frozen and then a killed holder hand over', async () => {
    const workers1 = await startProcess('workers1', ['ops/cli/main.ts', 'start', '--roles', 'workers']);
    expect(await untilHealthy(workers1)).toBe('projector active; membership active; analytics active; notifier active');
    const [workers2, gatewayA, gatewayB] = await Promise.all([
      startProcess('workers2', ['ops/cli/main.ts', 'start', '--roles', 'projector,membership,analytics,notifier']),
      startProcess('gatewayA', ['services/gateway/main.ts']),
      startProcess('gatewayB', ['ops/start.ts'], { PARLEY_ROLES: 'writer' }),
    ]);
    const [standby, rolesA, rolesB] = await Promise.all([untilHealthy(workers2), untilHealthy(gatewayA), untilHealthy(gatewayB)]);
    expect(standby).toContain(`standby for projector, held by pid ${workers1.child.pid} `);
    expect(rolesA).toBe('gateway');
    expect(rolesB).toBe('gateway');

    // alice on gateway A, bob on gateway B: each sees the other's messages live.
    const alice = await TestClient.connect(`ws://127.0.0.1:${gatewayA.port}/v1/ws`, await token(gatewayA, 'alice'));
    const bob = await TestClient.connect(`ws://127.0.0.1:${gatewayB.port}/v1/ws`, await token(gatewayB, 'bob'));
    clients.push(alice, bob);
    const created = await api(gatewayA.base, 'POST', '/v1/conversations', await token(gatewayA, 'alice'), {
      kind: 'group',
      title: 'roles',
      members: ['alice', 'bob'],
    });
    expect(created.status).toBe(201);
    const id = created.body.conversationId as string;
    // Membership events come from the workers process's membership reactor.
    await Promise.all([alice.joined(id, 10_000), bob.joined(id, 10_000)]);
    expect((await alice.send(id, 'from A')).t).toBe('ack');
    await bob.message(id, 'from A');
    expect((await bob.send(id, 'from B')).t).toBe('ack');
    await alice.message(id, 'from B');

    // History comes from the read model, which only the workers process projects.
    const history = async (p: Proc) => {
      const r = await api(p.base, 'GET', `/v1/conversations/${id}/messages?limit=50`, await token(p, 'bob'));
      return (r.body.messages as { text: string }[] | undefined)?.map((m) => m.text).reverse() ?? [];
    };
    const until = async (cond: () => Promise<boolean>, ms: number, what: string) => {
      const deadline = Date.now() + ms;
      while (!(await cond())) {
        if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
        await sleep(100);
      }
    };
    await until(async () => (await history(gatewayB)).length === 2, 10_000, 'history on gateway B');
    expect(await history(gatewayB)).toEqual(['from A', 'from B']);

    const allActive = 'projector active; membership active; analytics active; notifier active';
    const allStandby = (holder: Proc) => ['projector', 'membership', 'analytics', 'notifier'].map((r) => `standby for ${r}, held by pid ${holder.child.pid} `);

    // SIGSTOP of the active workers (a freeze: the process still exists, so nobody may assume it gone). Its lease
    // lapses after the TTL and the standby takes over; thawed, the old holder finds its lease gone and stands by.
    const frozenAt = Date.now();
    process.kill(workers1.child.pid!, 'SIGSTOP');
    expect((await alice.send(id, 'while frozen')).t).toBe('ack');
    await until(async () => (await health(workers2)).roles === allActive, 3 * TTL_SECONDS * 1000 + 3000, 'the standby to take over from the frozen holder');
    const frozenMs = Date.now() - frozenAt;
    // Not before the lease lapsed (it was refreshed at most a third of the TTL before the freeze), and not much after.
    expect(frozenMs).toBeGreaterThanOrEqual(((2 / 3) * TTL_SECONDS - 0.1) * 1000);
    expect(frozenMs).toBeLessThan((4 / 3) * TTL_SECONDS * 1000 + 3000);
    expect(workers2.output.some((l) => l.includes('took the projector lease of a process that is gone'))).toBe(false);
    await until(async () => (await history(gatewayA)).length === 3, 10_000, 'history after the takeover');
    process.kill(workers1.child.pid!, 'SIGCONT');
    await until(
      async () => {
        const roles = (await health(workers1)).roles;
        return allStandby(workers2).every((s) => roles.includes(s));
      },
      3 * TTL_SECONDS * 1000,
      'the thawed holder to stand by',
    );
    expect(workers1.output.some((l) => l.includes('lost the projector lease; stopping the projector role and standing by'))).toBe(true);
    expect((await bob.send(id, 'after the thaw')).t).toBe('ack');
    await until(async () => (await history(gatewayA)).length === 4, 10_000, 'history after the thaw');
    expect(await history(gatewayA)).toEqual(['from A', 'from B', 'while frozen', 'after the thaw']);

    // kill -9 of the now active workers: nothing released; the standby finds the holder gone and takes over.
    const killedAt = Date.now();
    process.kill(workers2.child.pid!, 'SIGKILL');
    expect((await alice.send(id, 'while taking over')).t).toBe('ack');
    // Each role has its own lease and takes over at its own next attempt (every third of the TTL), plus start-up.
    await until(async () => (await health(workers1)).roles === allActive, 3 * TTL_SECONDS * 1000 + 2000, 'the standby to take over every role');
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeLessThan((TTL_SECONDS * 1000) / 3 + 2000);
    // Not by the lapse: the holder was seen to be gone (same kernel and pid namespace, pid no longer running).
    expect(workers1.output.some((l) => l.includes('took the projector lease of a process that is gone'))).toBe(true);
    expect((await bob.send(id, 'after takeover')).t).toBe('ack');
    await until(async () => (await history(gatewayB)).length === 6, 10_000, 'history to converge');
    // Every message exactly once, in order, through three changes of holder.
    expect(await history(gatewayB)).toEqual(['from A', 'from B', 'while frozen', 'after the thaw', 'while taking over', 'after takeover']);
  }, 60_000);
});
