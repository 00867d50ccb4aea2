import { setTimeout as sleep } from 'node:timers/promises';
import type { ChaosNats } from './nats-nodes.js';
import type { StreamProbe } from './stream-probe.js';
import type { Supervised } from './supervisor.js';

/**
 * The faults a chaos run injects, one at a time: each is injected, held,
 * healed (restart, SIGCONT, partition healed), and the run waits until the
 * system has recovered (the stream's replicas all current again, or the
 * restarted process healthy) before the next.
 */
export interface FaultOutcome {
  name: string;
  target: string;
  injectedAt: number;
  healedAt: number;
  recoveredAt: number;
  /** When every durable consumer (projectors, notifier) was back within a second or so of the stream's end. */
  caughtUpAt?: number;
}

export interface FaultContext {
  nats: ChaosNats;
  probe: StreamProbe;
  replicas: number;
  restartPostgres(): Promise<void>;
  /** /healthz of every gateway answers 200. */
  gatewaysHealthy(timeoutMs: number): Promise<void>;
}

export interface Fault {
  name: string;
  run(ctx: FaultContext): Promise<FaultOutcome>;
}

const RECOVERY_TIMEOUT_MS = 90_000;

/** The NATS server leading shard 0's event stream now: the faults below hit it, which forces an election there (other shards' streams may lead elsewhere). */
async function leaderIndex(ctx: FaultContext): Promise<{ index: number; name: string }> {
  const name = await ctx.probe.waitLeader(30_000);
  return { index: ctx.nats.indexOf(name), name };
}

async function natsFault(
  ctx: FaultContext,
  name: string,
  holdMs: number,
  inject: (i: number) => void,
  heal: (i: number) => Promise<void> | void,
): Promise<FaultOutcome> {
  const leader = await leaderIndex(ctx);
  const injectedAt = Date.now();
  inject(leader.index);
  await sleep(holdMs);
  const healedAt = Date.now();
  await heal(leader.index);
  await ctx.probe.waitCurrent(ctx.replicas, RECOVERY_TIMEOUT_MS);
  return { name, target: `${leader.name} (stream leader)`, injectedAt, healedAt, recoveredAt: Date.now() };
}

export const natsKill = (holdMs: number): Fault => ({
  name: 'kill -9 NATS node',
  run: (ctx) =>
    natsFault(
      ctx,
      'kill -9 NATS node',
      holdMs,
      (i) => ctx.nats.kill(i),
      (i) => ctx.nats.restart(i),
    ),
});

export const natsFreeze = (holdMs: number): Fault => ({
  name: 'SIGSTOP stream leader',
  run: (ctx) =>
    natsFault(
      ctx,
      'SIGSTOP stream leader',
      holdMs,
      (i) => ctx.nats.freeze(i),
      (i) => ctx.nats.thaw(i),
    ),
});

export const natsPartition = (holdMs: number): Fault => ({
  name: 'partition NATS node',
  run: (ctx) =>
    natsFault(
      ctx,
      'partition NATS node',
      holdMs,
      (i) => ctx.nats.proxy.isolate(i),
      () => ctx.nats.proxy.heal(),
    ),
});

/** kill -9 of a Parley process (its whole process group), restarted at once. */
export const processKill = (p: Supervised, label: string): Fault => ({
  name: `kill -9 ${label}`,
  async run() {
    const injectedAt = Date.now();
    await p.kill();
    const healedAt = Date.now();
    await p.start(RECOVERY_TIMEOUT_MS);
    return { name: `kill -9 ${label}`, target: p.spec.name, injectedAt, healedAt, recoveredAt: Date.now() };
  },
});

export const postgresRestart = (): Fault => ({
  name: 'Postgres restart',
  async run(ctx) {
    const injectedAt = Date.now();
    await ctx.restartPostgres();
    const healedAt = Date.now();
    await ctx.gatewaysHealthy(RECOVERY_TIMEOUT_MS);
    return { name: 'Postgres restart', target: 'postgres (fast shutdown, start)', injectedAt, healedAt, recoveredAt: Date.now() };
  },
});

/**
 * kill -9 of whichever worker process holds the projector lease: a standby
 * takes the single-active roles over once the lease lapses
 * (ROLE_LEASE_TTL_SECONDS); the killed one is then restarted and waits as
 * the new standby. Recovered: the standby reports the projector active.
 */
export const activeWorkerKill = (workers: Supervised[]): Fault => ({
  name: 'kill -9 active projector',
  async run() {
    const states = await Promise.all(workers.map(projectorActive));
    const target = workers[Math.max(0, states.indexOf(true))]!;
    const injectedAt = Date.now();
    await target.kill();
    const healedAt = Date.now();
    // Restarted only after the takeover: a process restarting at once could win the lapsed lease back itself.
    const deadline = Date.now() + RECOVERY_TIMEOUT_MS;
    while (!(await Promise.all(workers.filter((w) => w !== target).map(projectorActive))).some(Boolean)) {
      if (Date.now() > deadline) throw new Error(`no standby took the projector over within ${RECOVERY_TIMEOUT_MS} ms`);
      await sleep(250);
    }
    const recoveredAt = Date.now();
    await target.start(RECOVERY_TIMEOUT_MS);
    return { name: 'kill -9 active projector', target: `${target.spec.name} (active)`, injectedAt, healedAt, recoveredAt };
  },
});

/** Whether a worker process's /healthz says it is the active read-model projector. */
export async function projectorActive(p: Supervised): Promise<boolean> {
  if (!p.running() || !p.spec.httpPort) return false;
  const body = await fetch(`http://127.0.0.1:${p.spec.httpPort}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
    (r) => r.text(),
    () => '',
  );
  return /projector active/.test(body);
}
