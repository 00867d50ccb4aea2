import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { pickFreePort } from '../ops/embedded/free-port.js';
import { readRecord, type ProcessIdentity } from '../ops/embedded/process-record.js';
import { commandOf, killAll, processTree, stillRunning } from './support/process-tree.js';

/**
 * `npm start` as an operator runs it: every way of stopping it stops every
 * process it started within 10 s, and after a SIGKILL of the platform the
 * next `npm start` on the same data dir and ports stops the servers left
 * behind and comes up healthy.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The embedded Postgres runs as `postgres` under root: it must traverse this directory (mkdtemp makes it 0700).
const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-lifecycle-'));
await fs.chmod(dataDir, 0o711);
const ports = { PORT: await pickFreePort(), NATS_PORT: await pickFreePort(), POSTGRES_PORT: await pickFreePort() };
const STOP_WITHIN_MS = 10_000;

/** Every process any run started, killed at the end whatever happened. */
const seen: ProcessIdentity[] = [];
afterAll(async () => {
  killAll(seen);
  await fs.rm(dataDir, { recursive: true, force: true });
});

interface Run {
  npm: ChildProcess;
  output: string[];
}

function npmStart(): Run {
  const output: string[] = [];
  // detached: npm leads its own process group, which one scenario signals as a whole (as a terminal's Ctrl-C does).
  const npm = spawn('npm', ['start'], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PARLEY_DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    },
  });
  for (const s of [npm.stdout!, npm.stderr!]) s.on('data', (c: Buffer) => output.push(...c.toString().split('\n').filter(Boolean)));
  return { npm, output };
}

async function untilHealthy(run: Run): Promise<void> {
  const deadline = Date.now() + 40_000;
  while (Date.now() < deadline) {
    if (run.npm.exitCode !== null) throw new Error(`npm start exited (${run.npm.exitCode}):\n${run.output.slice(-15).join('\n')}`);
    const status = await fetch(`http://127.0.0.1:${ports.PORT}/healthz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await sleep(100);
  }
  throw new Error(`not healthy in time:\n${run.output.slice(-15).join('\n')}`);
}

/** The whole tree under npm once it is up: npm, the platform, nats-server, Postgres and its workers. */
async function startAndMap(): Promise<{ run: Run; tree: ProcessIdentity[]; platform: number; nats: number; postgres: number }> {
  const run = npmStart();
  if (run.npm.pid) seen.push(...processTree(run.npm.pid));
  await untilHealthy(run);
  const tree = processTree(run.npm.pid!);
  seen.push(...tree);
  const platform = tree.find((p) => commandOf(p.pid).includes('ops/start.ts'))!.pid;
  const nats = (await readRecord(path.join(dataDir, 'nats', 'nats-server.pid.json')))!;
  const postgres = (await readRecord(path.join(dataDir, 'postgres.pid.json')))!;
  // The records name the servers this run started, owned by the platform process.
  expect(nats.owner.pid).toBe(platform);
  expect(postgres.owner.pid).toBe(platform);
  const pids = tree.map((p) => p.pid);
  expect(pids).toContain(nats.pid);
  expect(pids).toContain(postgres.pid);
  expect(tree.length).toBeGreaterThanOrEqual(4);
  return { run, tree, platform, nats: nats.pid, postgres: postgres.pid };
}

async function expectAllGone(tree: ProcessIdentity[], sinceMs: number): Promise<void> {
  while (stillRunning(tree).length > 0 && Date.now() - sinceMs < STOP_WITHIN_MS) await sleep(50);
  const left = stillRunning(tree).map((p) => `${p.pid} ${commandOf(p.pid)}`);
  expect(left, 'processes still running 10 s after the signal').toEqual([]);
}

describe('npm start stops everything it started', () => {
  it('on SIGTERM to npm', async () => {
    const { run, tree } = await startAndMap();
    const t = Date.now();
    process.kill(run.npm.pid!, 'SIGTERM');
    await expectAllGone(tree, t);
    expect(run.output.some((l) => l.includes('stopped; data kept'))).toBe(true);
    // A clean stop leaves no pid record behind.
    expect(await readRecord(path.join(dataDir, 'postgres.pid.json'))).toBeNull();
    expect(await readRecord(path.join(dataDir, 'nats', 'nats-server.pid.json'))).toBeNull();
  }, 60_000);

  it('on SIGINT to its whole process group (a terminal Ctrl-C)', async () => {
    const { run, tree } = await startAndMap();
    const t = Date.now();
    process.kill(-run.npm.pid!, 'SIGINT');
    await expectAllGone(tree, t);
    expect(run.output.some((l) => l.includes('stopped; data kept'))).toBe(true);
  }, 60_000);

  it('when npm itself is killed (SIGKILL): the platform sees its parent go and stops', async () => {
    const { run, tree } = await startAndMap();
    const t = Date.now();
    process.kill(run.npm.pid!, 'SIGKILL');
    await expectAllGone(tree, t);
    expect(run.output.some((l) => l.includes('"signal":"parent exited"'))).toBe(true);
  }, 60_000);

  it('after SIGKILL of the platform, the next start stops the servers left behind and comes up healthy; SIGTERM to the platform stops it', async () => {
    const first = await startAndMap();
    process.kill(first.platform, 'SIGKILL');
    await sleep(300);
    // The servers are orphans now, holding the ports: the situation to recover from.
    const orphans = first.tree.filter((p) => p.pid === first.nats || p.pid === first.postgres);
    expect(
      stillRunning(orphans)
        .map((p) => p.pid)
        .sort(),
    ).toEqual([first.nats, first.postgres].sort());

    const second = await startAndMap();
    // Nothing of the first run is left: the servers were stopped, npm and the rest went with the platform.
    expect(stillRunning(first.tree).map((p) => `${p.pid} ${commandOf(p.pid)}`)).toEqual([]);
    expect(second.run.output.filter((l) => l.includes('left behind by a process that is gone'))).toHaveLength(2);
    expect(second.nats).not.toBe(first.nats);

    const t = Date.now();
    process.kill(second.platform, 'SIGTERM');
    await expectAllGone(second.tree, t);
  }, 60_000);
});
