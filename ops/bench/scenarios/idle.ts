import { sampleProcesses } from '../lib/proc.js';
import type { LoadPool } from '../load/pool.js';
import type { Target } from '../targets/target.js';

export interface IdleResult {
  connections: number;
  failed: number;
  connectSeconds: number;
  connectsPerSecond: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerConnection: number;
  /** Idle connections per GiB (2^30 bytes) of server memory growth. */
  connectionsPerGiB: number;
  serverCpuUsPerConnect: number;
}

/**
 * Idle connections per GB: N authenticated clients (each its own user, no
 * conversations: the user's own subscription and presence only) open and stay
 * idle; the server's resident memory growth, after a full GC, divided by N.
 */
export async function runIdle(target: Target, pool: LoadPool, n: number, tag: string, log: (s: string) => void, settleMs = 2000): Promise<IdleResult> {
  await target.gc();
  await new Promise((r) => setTimeout(r, settleMs / 2));
  const before = sampleProcesses(target.serverPids);
  const clients = Array.from({ length: n }, (_, i) => ({ user: `${tag}-idle-${i}`, gw: 0, convs: [] }));
  const conn = await pool.connect('idle', clients, 100);
  const mid = sampleProcesses(target.serverPids);
  // Let presence writes, timers and buffers settle before reading memory.
  await new Promise((r) => setTimeout(r, settleMs));
  await target.gc();
  await new Promise((r) => setTimeout(r, settleMs / 2));
  const after = sampleProcesses(target.serverPids);
  const held = await target.connections();
  const growth = after.rss - before.rss;
  const perConn = held > 0 ? growth / held : 0;
  const r: IdleResult = {
    connections: held,
    failed: conn.failed,
    connectSeconds: conn.seconds,
    connectsPerSecond: conn.connected / conn.seconds,
    rssBeforeBytes: before.rss,
    rssAfterBytes: after.rss,
    bytesPerConnection: perConn,
    connectionsPerGiB: perConn > 0 ? 2 ** 30 / perConn : 0,
    serverCpuUsPerConnect: conn.connected ? (mid.cpuUs - before.cpuUs) / conn.connected : 0,
  };
  log(
    `  idle: ${held} connections held (${conn.failed} failed), ${(perConn / 1024).toFixed(2)} KiB each => ${Math.round(r.connectionsPerGiB).toLocaleString('en')} per GiB; ${Math.round(r.connectsPerSecond)} connects/s`,
  );
  if (conn.failed) log(`  idle: connect errors: ${conn.errors.join('; ')}`);
  await pool.closeAll();
  return r;
}
