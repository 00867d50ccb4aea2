import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Histogram } from '../lib/histogram.js';
import { spawnTs, type Child } from '../lib/ipc.js';
import type { ClientSpec, ConnectResult, DrainResult, RunRequest, RunResult, StormResult } from './protocol.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.ts');

function add(into: Record<string, number>, from: Record<string, number>): Record<string, number> {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  return into;
}

/** The runner's handle on its load processes: spreads clients over them and merges what they measure. */
export class LoadPool {
  private constructor(readonly workers: Child[]) {}

  static async start(count: number, target: 'parley' | 'peer', urls: string[], timeoutMs = 60_000): Promise<LoadPool> {
    const workers = Array.from({ length: count }, (_, i) => spawnTs(WORKER, `load-${target}-${i}`));
    await Promise.all(workers.map((w, i) => w.call('init', { worker: i, target, urls, timeoutMs })));
    return new LoadPool(workers);
  }

  private split<T>(items: T[]): T[][] {
    const parts: T[][] = this.workers.map(() => []);
    items.forEach((item, i) => parts[i % parts.length]!.push(item));
    return parts;
  }

  async connect(set: string, clients: ClientSpec[], concurrencyPerWorker = 200): Promise<ConnectResult> {
    const parts = this.split(clients);
    const rs = await Promise.all(this.workers.map((w, i) => w.call<ConnectResult>('connect', { set, clients: parts[i], concurrency: concurrencyPerWorker })));
    return {
      connected: sum(rs.map((r) => r.connected)),
      failed: sum(rs.map((r) => r.failed)),
      retries: sum(rs.map((r) => r.retries)),
      errors: rs.flatMap((r) => r.errors).slice(0, 5),
      seconds: Math.max(...rs.map((r) => r.seconds)),
    };
  }

  /** Total rate is split evenly over the processes (each paces its own senders). */
  async run(req: RunRequest): Promise<RunResult> {
    const rs = await Promise.all(this.workers.map((w) => w.call<RunResult>('run', { ...req, rate: req.rate / this.workers.length })));
    return {
      sent: sum(rs.map((r) => r.sent)),
      acked: sum(rs.map((r) => r.acked)),
      ackedByConv: rs.reduce((acc, r) => add(acc, r.ackedByConv), {} as Record<string, number>),
      failed: rs.reduce((acc, r) => add(acc, r.failed), {} as Record<string, number>),
      behind: sum(rs.map((r) => r.behind)),
      unanswered: sum(rs.map((r) => r.unanswered)),
      sendSeconds: Math.max(...rs.map((r) => r.sendSeconds)),
    };
  }

  async drain(
    sets: string[],
    ackedByConv: Record<string, number>,
    quietMs = 3000,
    timeoutMs = 60_000,
  ): Promise<Omit<DrainResult, 'latency'> & { latency: Histogram }> {
    const rs = await Promise.all(this.workers.map((w) => w.call<DrainResult>('drain', { sets, ackedByConv, quietMs, timeoutMs })));
    return {
      expected: sum(rs.map((r) => r.expected)),
      received: sum(rs.map((r) => r.received)),
      duplicates: sum(rs.map((r) => r.duplicates)),
      lost: sum(rs.map((r) => r.lost)),
      unexpectedCloses: sum(rs.map((r) => r.unexpectedCloses)),
      latency: Histogram.from(rs.map((r) => r.latency)),
    };
  }

  async send(set: string, perConv: Record<string, number>, window = 64): Promise<{ acked: Record<string, number>; failed: Record<string, number> }> {
    const rs = await Promise.all(
      this.workers.map((w) => w.call<{ acked: Record<string, number>; failed: Record<string, number> }>('send', { set, perConv, window })),
    );
    return {
      acked: rs.reduce((a, r) => add(a, r.acked), {} as Record<string, number>),
      failed: rs.reduce((a, r) => add(a, r.failed), {} as Record<string, number>),
    };
  }

  async storm(
    set: string,
    t0Us: number,
    deadlineMs: number,
    expectedByConv: Record<string, number>,
  ): Promise<Omit<StormResult, 'times'> & { times: Histogram }> {
    const rs = await Promise.all(this.workers.map((w) => w.call<StormResult>('storm', { set, t0Us, deadlineMs, expectedByConv })));
    return {
      clients: sum(rs.map((r) => r.clients)),
      resumed: sum(rs.map((r) => r.resumed)),
      failed: sum(rs.map((r) => r.failed)),
      retries: sum(rs.map((r) => r.retries)),
      statuses: rs.reduce((a, r) => add(a, r.statuses), {} as Record<string, number>),
      wrongCount: sum(rs.map((r) => r.wrongCount)),
      duplicates: sum(rs.map((r) => r.duplicates)),
      replayed: sum(rs.map((r) => r.replayed)),
      received: sum(rs.map((r) => r.received)),
      times: Histogram.from(rs.map((r) => r.times)),
      errors: rs.flatMap((r) => r.errors).slice(0, 5),
    };
  }

  reset(): Promise<unknown> {
    return Promise.all(this.workers.map((w) => w.call('reset')));
  }

  drop(set: string): Promise<unknown> {
    return Promise.all(this.workers.map((w) => w.call('drop', { set })));
  }

  /** CPU the load processes themselves used so far, µs (to show the generator's share of the machine). */
  async cpuUs(): Promise<number> {
    const rs = await Promise.all(this.workers.map((w) => w.call<{ cpu: NodeJS.CpuUsage }>('usage')));
    return sum(rs.map((r) => r.cpu.user + r.cpu.system));
  }

  closeAll(): Promise<unknown> {
    return Promise.all(this.workers.map((w) => w.call('closeAll')));
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
