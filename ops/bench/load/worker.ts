/**
 * A load-generator process. The runner starts several (one fd limit, one
 * event loop and one core's worth of JSON each) and drives them over IPC:
 * open connections, send at a rate or as fast as acks allow, count and time
 * what arrives, drop and resume connections at once.
 */
import { backoffDelay } from '../../../clients/sdk/backoff.js';
import { Histogram, nowMicros } from '../lib/histogram.js';
import { serve } from '../lib/ipc.js';
import { mintToken } from '../lib/jwt.js';
import { sourceAddress } from './addresses.js';
import type { BenchConn } from './conn.js';
import { ParleyConn } from './parley-conn.js';
import { benchText } from './payload.js';
import { PeerConn } from './peer-conn.js';
import { ReceiveTracker } from './tracker.js';
import type { ClientSpec, ConnectResult, DrainResult, RunRequest, RunResult, StormResult } from './protocol.js';

interface Client {
  spec: ClientSpec;
  conn: BenchConn;
  tracker: ReceiveTracker;
  counter: number;
  inflight: number;
  nextConv: number;
  /** Connected in the setup step; clients that never got in are left out of what follows and reported. */
  live: boolean;
}

let worker = 0;
let target: 'parley' | 'peer' = 'parley';
let urls: string[] = [];
let timeoutMs = 60_000;
let addressCounter = 0;
const CONNECT_ATTEMPTS = 6;
const sets = new Map<string, Client[]>();
const latency = new Histogram();

/**
 * Delay before retry `attempt` (1-based), as each system's own client does it: Parley's SDK (full
 * jitter, 250 ms base, 30 s cap), socket.io-client's defaults (1 s doubling to 5 s, ±50%). A storm's
 * outcome depends on it: clients retrying every second or two keep an overloaded server overloaded.
 */
function retryDelay(attempt: number): number {
  if (target === 'parley') return backoffDelay(attempt - 1);
  return Math.min(5000, 1000 * 2 ** (attempt - 1)) * (0.5 + Math.random());
}

const clientsOf = (names: string[]) => names.flatMap((n) => sets.get(n) ?? []);

function makeClient(spec: ClientSpec): Client {
  const tracker = new ReceiveTracker();
  const onMessage = (sender: number, counter: number, sentAt: number) => {
    if (tracker.add(sender, counter)) latency.record(nowMicros() - sentAt);
  };
  const options = {
    url: urls[spec.gw % urls.length]!,
    token: mintToken(spec.user),
    localAddress: () => sourceAddress(worker, addressCounter++),
    onMessage,
    trackPosition: !!spec.trackPosition,
    timeoutMs,
  };
  const conn = target === 'parley' ? new ParleyConn(options) : new PeerConn(options);
  return { spec, conn, tracker, counter: 0, inflight: 0, nextConv: 0, live: false };
}

/** Runs `fn` over items with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

function sendOne(c: Client, conv: string, acked: Record<string, number>, failed: Record<string, number>): Promise<void> {
  const counter = ++c.counter;
  c.inflight++;
  return c.conn.send(conv, `${c.spec.sender}-${counter}`, benchText(c.spec.sender!, counter)).then((outcome) => {
    c.inflight--;
    if (outcome === 'ok') acked[conv] = (acked[conv] ?? 0) + 1;
    else failed[outcome] = (failed[outcome] ?? 0) + 1;
  });
}

async function run(req: RunRequest): Promise<RunResult> {
  const senders = clientsOf(req.sets).filter((c) => c.spec.sends?.length && c.conn.isOpen);
  const acked: Record<string, number> = {};
  const failed: Record<string, number> = {};
  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    pending.add(p);
    void p.then(() => pending.delete(p));
  };
  const pick = (c: Client) => c.spec.sends![c.nextConv++ % c.spec.sends!.length]!;
  const t0 = performance.now();
  const end = t0 + req.durationMs;
  let sent = 0;
  let behind = 0;
  if (req.mode === 'closed') {
    // Each sender keeps `window` sends in flight: throughput is whatever the server sustains.
    const pump = (c: Client): void => {
      while (c.inflight < req.window && performance.now() < end) {
        sent++;
        track(sendOne(c, pick(c), acked, failed).then(() => pump(c)));
      }
    };
    senders.forEach(pump);
    await new Promise((r) => setTimeout(r, req.durationMs));
  } else if (senders.length > 0) {
    // Open loop: sends are issued on schedule whatever the latency, so queueing shows in the latency.
    let rr = 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const now = performance.now();
        const due = Math.floor((Math.min(now, end) - t0) * (req.rate / 1000)) - sent - behind;
        for (let k = 0; k < due; k++) {
          const c = senders[rr++ % senders.length]!;
          if (c.inflight >= req.maxInflightPerSender) {
            behind++;
            continue;
          }
          sent++;
          track(sendOne(c, pick(c), acked, failed));
        }
        if (now >= end) {
          clearInterval(tick);
          resolve();
        }
      }, 2);
    });
  }
  const elapsed = (performance.now() - t0) / 1000;
  const waitUntil = performance.now() + timeoutMs;
  while (pending.size > 0 && performance.now() < waitUntil) await Promise.race([Promise.all([...pending]), new Promise((r) => setTimeout(r, 1000))]);
  const ackCount = Object.values(acked).reduce((a, b) => a + b, 0);
  return { sent, acked: ackCount, ackedByConv: acked, failed, behind, unanswered: pending.size, sendSeconds: elapsed };
}

async function drain(req: { sets: string[]; ackedByConv: Record<string, number>; quietMs: number; timeoutMs: number }): Promise<DrainResult> {
  const clients = clientsOf(req.sets).filter((c) => c.live);
  const expected = clients.reduce((n, c) => n + c.spec.convs.reduce((m, conv) => m + (req.ackedByConv[conv] ?? 0), 0), 0);
  const received = () => clients.reduce((n, c) => n + c.tracker.distinct, 0);
  const deadline = performance.now() + req.timeoutMs;
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const r = received();
    if (r >= expected) break;
    if (r !== last) {
      last = r;
      lastChange = performance.now();
    }
    if (performance.now() - lastChange > req.quietMs || performance.now() > deadline) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  const got = received();
  return {
    expected,
    received: got,
    duplicates: clients.reduce((n, c) => n + c.tracker.duplicates, 0),
    lost: Math.max(0, expected - got),
    unexpectedCloses: clients.reduce((n, c) => n + c.conn.unexpectedCloses, 0),
    latency: latency.snapshot(),
  };
}

async function connect(req: { set: string; clients: ClientSpec[]; concurrency: number }): Promise<ConnectResult> {
  const list = req.clients.map(makeClient);
  sets.set(req.set, [...(sets.get(req.set) ?? []), ...list]);
  const errors: string[] = [];
  let failed = 0;
  const t0 = performance.now();
  let retries = 0;
  await pool(list, req.concurrency, async (c) => {
    // Like a real client: a connection lost before it is live is retried with backoff and jitter.
    for (let attempt = 1; ; attempt++) {
      try {
        await c.conn.connect(false);
        c.live = true;
        return;
      } catch (err) {
        if (errors.length < 5) errors.push(String(err));
        if (attempt >= CONNECT_ATTEMPTS) {
          failed++;
          return;
        }
        retries++;
        await new Promise((r) => setTimeout(r, retryDelay(attempt)));
      }
    }
  });
  return { connected: list.length - failed, failed, retries, errors, seconds: (performance.now() - t0) / 1000 };
}

/** Every client of the set reconnects now, presenting what it kept; retries with backoff and jitter like a real client. */
async function storm(req: { set: string; t0Us: number; deadlineMs: number; expectedByConv: Record<string, number> }): Promise<StormResult> {
  const clients = (sets.get(req.set) ?? []).filter((c) => c.live);
  for (const c of clients) c.tracker.resetCounts();
  const times = new Histogram();
  const statuses: Record<string, number> = {};
  const errors: string[] = [];
  let retries = 0;
  let failed = 0;
  let wrongCount = 0;
  let replayedSum = 0;
  const deadline = performance.now() + req.deadlineMs;
  await Promise.all(
    clients.map(async (c) => {
      for (let attempt = 1; ; attempt++) {
        try {
          const ready = await c.conn.connect(true);
          times.record(nowMicros() - req.t0Us);
          statuses[ready.status] = (statuses[ready.status] ?? 0) + 1;
          replayedSum += ready.replayed ?? 0;
          const expected = c.spec.convs.reduce((n, conv) => n + (req.expectedByConv[conv] ?? 0), 0);
          if (c.tracker.distinct !== expected) wrongCount++;
          return;
        } catch (err) {
          if (errors.length < 5) errors.push(String(err));
          if (performance.now() > deadline) {
            failed++;
            return;
          }
          retries++;
          await new Promise((r) => setTimeout(r, retryDelay(attempt)));
        }
      }
    }),
  );
  return {
    clients: clients.length,
    resumed: clients.length - failed,
    failed,
    retries,
    statuses,
    wrongCount,
    duplicates: clients.reduce((n, c) => n + c.tracker.duplicates, 0),
    replayed: replayedSum,
    received: clients.reduce((n, c) => n + c.tracker.distinct, 0),
    times: times.snapshot(),
    errors,
  };
}

serve({
  init(p: { worker: number; target: 'parley' | 'peer'; urls: string[]; timeoutMs: number }) {
    ({ worker, target, urls, timeoutMs } = p);
    return { pid: process.pid };
  },
  connect,
  run,
  drain,
  storm,
  reset() {
    latency.reset();
    for (const list of sets.values()) for (const c of list) c.tracker.resetCounts();
  },
  async send(p: { set: string; perConv: Record<string, number>; window: number }) {
    // Writers: `perConv[conv]` messages into each conversation, each conversation in order.
    const acked: Record<string, number> = {};
    const failed: Record<string, number> = {};
    const jobs: { c: Client; conv: string; n: number }[] = [];
    for (const c of sets.get(p.set) ?? []) for (const conv of c.spec.sends ?? []) if (p.perConv[conv]) jobs.push({ c, conv, n: p.perConv[conv]! });
    await pool(jobs, p.window, async ({ c, conv, n }) => {
      for (let i = 0; i < n; i++) await sendOne(c, conv, acked, failed);
    });
    return { acked, failed };
  },
  async drop(p: { set: string }) {
    await pool(sets.get(p.set) ?? [], 2000, (c) => c.conn.drop());
    return null;
  },
  usage() {
    return { cpu: process.cpuUsage(), rss: process.memoryUsage.rss() };
  },
  closeAll() {
    for (const list of sets.values()) for (const c of list) c.conn.close();
    sets.clear();
    return null;
  },
  stop() {
    setTimeout(() => process.exit(0), 10);
    return null;
  },
});
