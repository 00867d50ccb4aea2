import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EmbeddedLog } from './log.js';

const execFileAsync = promisify(execFile);

/** 2.10 brings sync_interval, multi-filter consumers and expected-sequence fixes. */
const MIN_VERSION: readonly [number, number, number] = [2, 10, 0];

/** Extracts "2.10.27" from `nats-server --version` output ("nats-server: v2.10.27"). */
export function parseNatsVersion(output: string): string | null {
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(output);
  return m ? `${m[1]}.${m[2]}.${m[3]}` : null;
}

/** True when the version string (as returned by parseNatsVersion) is new enough. */
export function isSupportedNatsVersion(version: string): boolean {
  const parts = version.split('.').map(Number);
  for (let i = 0; i < MIN_VERSION.length; i++) {
    const have = parts[i] ?? 0;
    const want = MIN_VERSION[i] ?? 0;
    if (have !== want) return have > want;
  }
  return true;
}

/** Runs `<bin> --version`; null when the binary is missing or unusable. */
async function probe(bin: string): Promise<string | null> {
  try {
    const { stdout, stderr } = await execFileAsync(bin, ['--version'], { timeout: 10_000 });
    return parseNatsVersion(`${stdout}\n${stderr}`);
  } catch {
    return null;
  }
}

async function findOnPath(name: string): Promise<string | null> {
  // PATH is OS plumbing, not application config, so reading it here is fine.
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      await fs.access(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/**
 * Finds or fetches a nats-server >= 2.10: explicit path, then PATH, then the
 * project-local cache, then Debian trixie's package (bookworm ships 2.9).
 */
export async function ensureNatsServer(opts: {
  projectDir: string;
  log: EmbeddedLog;
  /** From config (NATS_SERVER_BIN); when set it must work, no silent fallback. */
  explicitPath?: string;
}): Promise<{ path: string; version: string }> {
  const { log } = opts;
  if (opts.explicitPath) {
    const version = await probe(opts.explicitPath);
    if (!version || !isSupportedNatsVersion(version)) {
      throw new Error(`nats-server at ${opts.explicitPath} is ${version ? `v${version}` : 'not runnable'}; need >= ${MIN_VERSION.join('.')}`);
    }
    return { path: opts.explicitPath, version };
  }

  const onPath = await findOnPath('nats-server');
  if (onPath) {
    const version = await probe(onPath);
    if (version && isSupportedNatsVersion(version)) return { path: onPath, version };
    log.info('nats-server on PATH is too old or broken, looking elsewhere', { path: onPath, version });
  }

  const cached = path.join(opts.projectDir, '.parley', 'bin', 'nats-server');
  const cachedVersion = await probe(cached);
  if (cachedVersion && isSupportedNatsVersion(cachedVersion)) return { path: cached, version: cachedVersion };

  log.info('fetching nats-server from Debian trixie', { target: cached });
  const started = Date.now();
  await fetchFromTrixie(cached);
  const version = await probe(cached);
  if (!version || !isSupportedNatsVersion(version)) {
    throw new Error(`nats-server fetched from Debian trixie reports ${version ?? 'no version'}; need >= 2.10`);
  }
  log.info('nats-server installed', { path: cached, version, ms: Date.now() - started });
  return { path: cached, version };
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync(cmd, args, { cwd, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error(`${cmd} not found: cannot fetch nats-server. Install nats-server >= 2.10 on PATH or set NATS_SERVER_BIN`, { cause: err });
    }
    throw new Error(`${cmd} ${args.at(-1) ?? ''} failed while fetching nats-server: ${e.stderr?.trim() ?? e.message}`, {
      cause: err,
    });
  }
}

/**
 * Downloads and unpacks trixie's nats-server .deb with a private apt state in
 * a temp dir, so the system's sources, lists and cache are never touched.
 */
async function fetchFromTrixie(target: string): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-nats-deb-'));
  try {
    await fs.mkdir(path.join(tmp, 'lists', 'partial'), { recursive: true });
    await fs.mkdir(path.join(tmp, 'cache', 'archives', 'partial'), { recursive: true });
    await fs.writeFile(
      path.join(tmp, 'trixie.sources'),
      [
        'Types: deb',
        'URIs: http://deb.debian.org/debian',
        'Suites: trixie',
        'Components: main',
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
        '',
      ].join('\n'),
    );
    const aptOpts = [
      '-o',
      'Dir::Etc::SourceList=/dev/null',
      '-o',
      `Dir::Etc::SourceParts=${tmp}`,
      '-o',
      `Dir::State::Lists=${path.join(tmp, 'lists')}`,
      '-o',
      `Dir::Cache=${path.join(tmp, 'cache')}`,
      '-o',
      'Debug::NoLocking=1',
      // The default _apt sandbox user could not write into our root-owned temp dir.
      '-o',
      'APT::Sandbox::User=root',
    ];
    await run('apt-get', [...aptOpts, 'update'], tmp);
    await run('apt-get', [...aptOpts, 'download', 'nats-server'], tmp);
    const deb = (await fs.readdir(tmp)).find((f) => f.startsWith('nats-server_') && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download produced no nats-server .deb in ${tmp}`);
    const unpacked = path.join(tmp, 'x');
    await run('dpkg-deb', ['-x', path.join(tmp, deb), unpacked], tmp);

    // Copy under a unique name, then rename: rename is atomic, so a concurrent
    // caller (vitest global setup vs. npm start) either sees no file or a whole
    // one, and if both finish the later rename just replaces an identical file.
    await fs.mkdir(path.dirname(target), { recursive: true });
    const staged = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await fs.copyFile(path.join(unpacked, 'usr', 'sbin', 'nats-server'), staged);
      await fs.chmod(staged, 0o755);
      await fs.rename(staged, target);
    } finally {
      await fs.rm(staged, { force: true });
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
