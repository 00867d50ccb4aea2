import path from 'node:path';
import { nowMicros } from '../lib/histogram.js';
import { sampleProcesses } from '../lib/proc.js';
import type { LoadPool } from '../load/pool.js';
import type { ClientSpec } from '../load/protocol.js';
import type { ConvSpec, Target } from '../targets/target.js';

export interface StormSpec {
  clients: number;
  /** Storm clients per group (each group also has one writer, who stays connected). */
  groupSize: number;
  /** Each group misses 1..maxMissed messages while its clients are away. */
  maxMissed: number;
  /** Groups per writer. */
  groupsPerWriter: number;
  deadlineSeconds: number;
}

export interface StormResult {
  clients: number;
  /** Clients (and writers) that could not connect during setup, after retries: not part of the storm. */
  setupFailed: number;
  setupRetries: number;
  warmupLost: number;
  gateways: number;
  resumed: number;
  failed: number;
  retries: number;
  /** Seconds from the storm's start until the last client was resumed; null when some never were (by the deadline). */
  allResumedSeconds: number | null;
  /** Seconds until the last of those that did resume. */
  lastResumedSeconds: number;
  p50Seconds: number;
  p99Seconds: number;
  resumesPerSecond: number;
  statuses: Record<string, number>;
  /** Clients that did not get exactly the messages they missed. */
  wrongCount: number;
  duplicates: number;
  missedEvents: number;
  eventsDelivered: number;
  serverCpuSeconds: number;
  supportCpuSeconds: number;
  /** NATS and Postgres CPU over the storm (when this run started them), and every server process together. */
  infraCpuSeconds?: number;
  allServerCpuSeconds?: number;
  errors: string[];
}

/**
 * Reconnect storm with resume (issue 4's benchmark): every client connects
 * and receives one live message (so it holds a position, or a Socket.IO
 * offset), all drop, each group gets 1..maxMissed more messages, then all
 * clients reconnect at the same moment presenting what they kept. A client
 * counts as resumed when the server says so (`synced` / recovered
 * `connect`) and it holds exactly the messages it missed.
 */
export async function runStorm(
  target: Target,
  pool: LoadPool,
  spec: StormSpec,
  tag: string,
  log: (s: string) => void,
  profileDir?: string,
): Promise<StormResult> {
  const groups = Math.ceil(spec.clients / spec.groupSize);
  const writer = (g: number) => `${tag}-storm-writer-${Math.floor(g / spec.groupsPerWriter)}`;
  const member = (g: number, m: number) => `${tag}-storm-member-${g * spec.groupSize + m}`;
  const convSpecs: ConvSpec[] = Array.from({ length: groups }, (_, g) => ({
    kind: 'group',
    members: [writer(g), ...Array.from({ length: spec.groupSize }, (_, m) => member(g, m))],
  }));
  const t0 = performance.now();
  const ids = await target.createConversations(convSpecs);
  await target.settle();
  log(`  storm: ${groups} groups created in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const writers = new Map<string, ClientSpec>();
  convSpecs.forEach((_, g) => {
    const user = writer(g);
    const w = writers.get(user) ?? { user, gw: writers.size % target.urls.length, convs: [], sends: [], sender: writers.size };
    w.convs.push(ids[g]!);
    w.sends!.push(ids[g]!);
    writers.set(user, w);
  });
  const stormClients: ClientSpec[] = convSpecs.flatMap((cs, g) =>
    cs.members.slice(1).map((user, m) => ({ user, gw: (g * spec.groupSize + m) % target.urls.length, convs: [ids[g]!], trackPosition: true })),
  );
  const wc = await pool.connect('writers', [...writers.values()]);
  const sc = await pool.connect('storm', stormClients);
  // Clients the gateway would not let in during setup (see docs/benchmarks.md) are left out and reported.
  log(
    `  storm: ${sc.connected} clients and ${wc.connected} writers connected in ${(sc.seconds + wc.seconds).toFixed(1)} s (${sc.retries + wc.retries} retries, ${sc.failed} + ${wc.failed} never got in)`,
  );
  if (sc.failed + wc.failed) log(`  storm: setup connect errors: ${[...wc.errors, ...sc.errors].slice(0, 3).join('; ')}`);

  // One live message each: Parley clients then hold a position past it, Socket.IO clients an offset.
  const warm = await pool.send('writers', Object.fromEntries(ids.map((id) => [id, 1])));
  const warmDrain = await pool.drain(['storm'], warm.acked, 5000, 120_000);
  if (warmDrain.lost) log(`  storm: warm-up: ${warmDrain.lost} live deliveries missing`);

  await pool.drop('storm');
  for (let i = 0; i < 600 && (await target.connections()) > writers.size; i++) await new Promise((r) => setTimeout(r, 100));

  const perConv = Object.fromEntries(ids.map((id, g) => [id, 1 + ((g * 37) % spec.maxMissed)]));
  const sent = await pool.send('writers', perConv, 256);
  if (Object.keys(sent.failed).length) log(`  storm: sends failed while clients were away: ${JSON.stringify(sent.failed)}`);
  const missedEvents = stormClients.reduce((n, c) => n + (sent.acked[c.convs[0]!] ?? 0), 0);
  await target.settle();
  log(
    `  storm: ${Object.values(sent.acked).reduce((a, b) => a + b, 0)} messages sent while away (${missedEvents} missed deliveries); reconnecting all at once`,
  );

  const server0 = sampleProcesses(target.serverPids);
  const support0 = sampleProcesses(target.supportPids);
  const infraCpu = () => Object.values(target.infra ?? {}).reduce((a, cpuUs) => a + cpuUs(), 0);
  const infra0 = infraCpu();
  const profiling = profileDir && target.profile ? target.profile : null;
  await profiling?.start();
  const r = await pool.storm('storm', nowMicros(), spec.deadlineSeconds * 1000, sent.acked);
  if (profiling) {
    const file = path.join(profileDir!, `${target.name}-storm-${spec.clients}.cpuprofile`);
    await profiling.stop(file);
    log(`  storm: gateway CPU profile in ${file}`);
  }
  const server1 = sampleProcesses(target.serverPids);
  const support1 = sampleProcesses(target.supportPids);
  const infraCpuSeconds = (infraCpu() - infra0) / 1e6;
  const result: StormResult = {
    clients: r.clients,
    setupFailed: sc.failed + wc.failed,
    setupRetries: sc.retries + wc.retries,
    warmupLost: warmDrain.lost,
    gateways: target.urls.length,
    resumed: r.resumed,
    failed: r.failed,
    retries: r.retries,
    allResumedSeconds: r.failed === 0 && r.resumed > 0 ? r.times.max / 1e6 : null,
    lastResumedSeconds: r.times.max / 1e6,
    p50Seconds: r.times.percentile(50) / 1e6,
    p99Seconds: r.times.percentile(99) / 1e6,
    resumesPerSecond: r.resumed / (r.times.max / 1e6 || 1),
    statuses: r.statuses,
    wrongCount: r.wrongCount,
    duplicates: r.duplicates,
    missedEvents,
    eventsDelivered: r.received,
    serverCpuSeconds: (server1.cpuUs - server0.cpuUs) / 1e6,
    supportCpuSeconds: (support1.cpuUs - support0.cpuUs) / 1e6,
    infraCpuSeconds,
    allServerCpuSeconds: (server1.cpuUs - server0.cpuUs + support1.cpuUs - support0.cpuUs) / 1e6 + infraCpuSeconds,
    errors: r.errors,
  };
  log(
    `  storm: ${result.resumed}/${result.clients} resumed, ${result.allResumedSeconds === null ? `not all (deadline ${spec.deadlineSeconds} s)` : `all within ${result.allResumedSeconds.toFixed(2)} s`} (p50 ${result.p50Seconds.toFixed(2)} s, p99 ${result.p99Seconds.toFixed(2)} s), ` +
      `${result.retries} retries, statuses ${JSON.stringify(result.statuses)}, wrong ${result.wrongCount}, dup ${result.duplicates}` +
      (r.errors.length ? `; errors: ${r.errors.join('; ')}` : ''),
  );
  await pool.closeAll();
  return result;
}
