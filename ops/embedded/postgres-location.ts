import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { EmbeddedLog } from './log.js';
import { canReach, ensureTrustedDir, type RunAs } from './postgres-binaries.js';
import { exists } from './postgres-datadir.js';
import { StartRefused } from './refusal.js';

/**
 * Where the cluster of a requested data dir actually lives. Under root,
 * Postgres runs as `postgres`, which cannot reach a data dir inside a
 * private directory (a clone in root's home, mode 0700). Rather than open
 * directories we did not create, or refuse the quick start, such a cluster
 * lives in FALLBACK_ROOT, a root-owned directory only root can write, under a
 * name derived from the requested path (the same data dir always maps to the
 * same cluster). `<dataDir>.location` records where, for operators.
 */

/** /var/lib: the cluster is state that cannot be rebuilt. */
export const FALLBACK_ROOT = '/var/lib/parley';

export interface ClusterLocation {
  /** The directory Postgres runs on (PGDATA). */
  clusterDir: string;
  /** Set when the cluster lives in the fallback root: why, for the one log line at start. */
  fallbackReason?: string;
}

/** `<root>/postgres-<first 16 hex of sha256(real path of dataDir)>`; the parent of dataDir must exist. */
export async function fallbackClusterDir(dataDir: string, root: string): Promise<string> {
  // The real path: a data dir named through a symlink or a relative path maps to the same cluster.
  const real = path.join(await fs.realpath(path.dirname(dataDir)), path.basename(dataDir));
  return path.join(root, `postgres-${createHash('sha256').update(real).digest('hex').slice(0, 16)}`);
}

export const locationFile = (dataDir: string) => `${dataDir}.location`;

async function readLocation(dataDir: string): Promise<string | null> {
  return fs.readFile(locationFile(dataDir), 'utf8').then(
    (s) => s.trim() || null,
    () => null,
  );
}

/**
 * The cluster directory for `dataDir` when Postgres runs as `user`: dataDir
 * itself when that user can reach it (a cluster already there is always kept
 * there), else the fallback, created owned by `user`, mode 0700. Refuses in
 * one line when the fallback root is unsafe, or when an existing cluster in
 * dataDir became unreachable (starting an empty one instead would hide it).
 */
export async function resolveClusterDir(dataDir: string, user: RunAs, root: string, log: EmbeddedLog): Promise<ClusterLocation> {
  const parent = path.dirname(dataDir);
  const recorded = await readLocation(dataDir);
  const reachable = await canReach(parent, user);
  const initialisedHere = await exists(path.join(dataDir, 'PG_VERSION'));
  // An earlier start that used the fallback recorded it: the data is there even if dataDir became reachable since.
  if (reachable && (initialisedHere || recorded === null)) return { clusterDir: dataDir };

  const clusterDir = await fallbackClusterDir(dataDir, root);
  if (initialisedHere && !reachable) {
    throw new StartRefused(
      `the Postgres cluster in ${dataDir} is no longer reachable by the user "postgres" it runs as; move it where it can be (as root: mv ${dataDir} ${clusterDir}) and start again, or set PARLEY_DATA_DIR or DATABASE_URL`,
    );
  }
  await ensureTrustedDir(
    root,
    `${root} must be a directory owned by root that only root can write (it holds the Postgres data of data directories the postgres user cannot reach); fix or remove it, or set PARLEY_DATA_DIR to a directory the postgres user can reach, or set DATABASE_URL`,
  );
  await fs.mkdir(clusterDir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const st = await fs.lstat(clusterDir);
  // Only root can write in root, so this holds unless root itself put something else there.
  if (!st.isDirectory()) throw new StartRefused(`${clusterDir} is not a directory; remove it and start again`);
  await fs.chown(clusterDir, user.uid, user.gid);
  await fs.chmod(clusterDir, 0o700);

  if (recorded !== clusterDir) {
    if (recorded !== null && (await exists(recorded))) {
      // The data dir moved (another real path, another name): its cluster stays where it was.
      log.warn(
        `${locationFile(dataDir)} named ${recorded}, but this data dir now maps to ${clusterDir}; to keep the data, stop Parley and move the former to the latter`,
      );
    }
    const tmp = `${locationFile(dataDir)}.${process.pid}.tmp`;
    await fs.writeFile(tmp, `${clusterDir}\n`, { mode: 0o644 });
    await fs.rename(tmp, locationFile(dataDir));
  }
  const why = reachable
    ? `an earlier start put it there (${locationFile(dataDir)})`
    : `the user "postgres" it runs as cannot reach ${parent} (a private parent directory, e.g. root's home), whose permissions are left as they are`;
  return { clusterDir, fallbackReason: why };
}
