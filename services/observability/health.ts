import fs from 'node:fs/promises';
import path from 'node:path';
import type { HealthResponse } from '../../contracts/index.js';
import type { Role } from '../runtime/roles.js';
import { storageAlarms, type StorageAlarms, type StoreName } from './storage-full.js';

export type HealthCheck = () => Promise<string | void>;

/**
 * Thrown by a check whose dependency answers but cannot store anything (its
 * disk or storage limit is full): the platform still serves reads, so it is
 * `degraded`, not `down`; /healthz answers 503 either way.
 */
export class DegradedError extends Error {
  override readonly name = 'DegradedError';
}

const CHECK_TIMEOUT_MS = 2000;

async function timed(check: HealthCheck): Promise<{ ok: boolean; latencyMs: number; detail?: string; degraded?: boolean }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const detail = await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, latencyMs: Math.round(performance.now() - started), ...(detail ? { detail } : {}) };
  } catch (err) {
    return {
      ok: false,
      latencyMs: Math.round(performance.now() - started),
      detail: (err as Error)?.message ?? String(err),
      degraded: err instanceof DegradedError,
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The dependency checks each role cannot work without. ClickHouse only
 * matters to the analytics role: a gateway answers its analytics endpoints
 * with 503 by itself, and chat goes on, so a ClickHouse outage must not take
 * every gateway out of a load balancer (docs/operations.md, "Health and readiness").
 */
const ROLE_NEEDS: Record<Role, readonly string[]> = {
  gateway: ['nats', 'postgres'],
  projector: ['nats', 'postgres'],
  membership: ['nats'],
  analytics: ['nats', 'postgres', 'clickhouse'],
  notifier: ['nats', 'postgres'],
};

/** The checks readiness depends on for the roles working in this process (a standby needs nothing beyond NATS, to take over). */
export function requiredChecks(activeRoles: readonly Role[]): string[] {
  const needed = new Set<string>(['nats']);
  for (const role of activeRoles) for (const check of ROLE_NEEDS[role]) needed.add(check);
  return [...needed];
}

/**
 * Runs every named check concurrently; the platform is `ok` only when all
 * are, `degraded` when every failing one only lacks storage, `down` otherwise.
 * `ready`: no check in `required` is down (a degraded store still serves
 * reads, and is the same store for every instance: removing this one from a
 * load balancer would help nobody). Without `required`, every check is.
 */
export async function runHealthChecks(checks: Record<string, HealthCheck>, required: readonly string[] = Object.keys(checks)): Promise<HealthResponse> {
  const names = Object.keys(checks);
  const results = await Promise.all(names.map((n) => timed(checks[n]!)));
  const needed = required.filter((name) => name in checks);
  const out: HealthResponse = { status: 'ok', ready: true, required: needed, down: [], checks: {} };
  let hardDown = false;
  names.forEach((name, i) => {
    const { degraded, ...r } = results[i]!;
    out.checks[name] = r;
    if (!r.ok) out.down.push(name);
    if (!r.ok && !degraded) hardDown = true;
    if (!r.ok && !degraded && needed.includes(name)) out.ready = false;
  });
  if (out.down.length > 0) out.status = hardDown ? 'down' : 'degraded';
  return out;
}

/** HTTP status of /healthz (every check) and /readyz (only what this process's roles need) for one health body. */
export function healthStatusCode(path: '/healthz' | '/readyz', health: HealthResponse): 200 | 503 {
  if (path === '/readyz') return health.ready ? 200 : 503;
  return health.status === 'ok' ? 200 : 503;
}

export interface StorageCheckOptions {
  store: StoreName;
  /** The store's data directory when this platform runs it embedded (its disk is then ours to watch). */
  dataDir?: string | undefined;
  /** Less free space than this on `dataDir`'s disk counts as full; 0 turns the free-space check off. */
  minFreeBytes: number;
  alarms?: StorageAlarms;
}

/**
 * Wraps a dependency's check with the signs that its store is full: a write
 * it refused for lack of space recently (services/observability/storage-full.ts),
 * and, for an embedded store, the free space of its disk. The dependency's
 * own check runs first: unreachable is `down`, reachable but full is degraded.
 */
export function withStorageCheck(check: HealthCheck, options: StorageCheckOptions): HealthCheck {
  const alarms = options.alarms ?? storageAlarms;
  return async () => {
    const detail = await check();
    const refused = alarms.active(options.store);
    if (refused) throw new DegradedError(refused);
    if (options.dataDir && options.minFreeBytes > 0) {
      const low = await lowDiskSpace(options.dataDir, options.minFreeBytes);
      if (low) throw new DegradedError(low);
    }
    return detail;
  };
}

/** A sentence saying the disk holding `dir` is (nearly) full, or null when it has at least `minFreeBytes` free. */
export async function lowDiskSpace(dir: string, minFreeBytes: number): Promise<string | null> {
  const free = await freeDiskBytes(dir);
  if (free >= minFreeBytes) return null;
  return `disk full: ${mib(free)} MiB free on the disk of ${path.basename(dir)}/ (minimum ${mib(minFreeBytes)} MiB, HEALTH_MIN_FREE_DISK_MB)`;
}

/** Bytes still usable on the disk holding `dir` (or, before it exists, the disk it will be created on). */
export async function freeDiskBytes(dir: string): Promise<number> {
  const st = await fs.statfs(await nearestExisting(dir));
  // bavail, not bfree: what an unprivileged writer (Postgres runs as its own user) can still use.
  return st.bavail * st.bsize;
}

/** The directory itself or, before a store created it, the closest parent that exists (on the disk it will use). */
async function nearestExisting(dir: string): Promise<string> {
  let current = path.resolve(dir);
  for (;;) {
    try {
      await fs.access(current);
      return current;
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return current;
      current = parent;
    }
  }
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0);
}
