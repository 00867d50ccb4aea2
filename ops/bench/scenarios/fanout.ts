import path from 'node:path';
import { sampleProcesses } from '../lib/proc.js';
import type { LoadPool } from '../load/pool.js';
import type { ClientSpec } from '../load/protocol.js';
import type { ConvSpec, Target } from '../targets/target.js';

export type Topology = 'direct' | 'group' | 'channel';

export interface FanoutSpec {
  topology: Topology;
  /** Conversations of this topology (pairs, groups or channels). */
  conversations: number;
  /** Members per conversation (2 for 1:1). */
  members: number;
  /** Members of each conversation that send. */
  senders: number;
}

export interface PhaseSpec {
  name: string;
  mode: 'closed' | 'open';
  seconds: number;
  /** Closed loop: sends in flight per sender. */
  window?: number;
  /** Open loop: total sends/s, or a fraction of the previous closed phase's rate. */
  rate?: number | { ofMax: number };
}

export interface PhaseResult {
  name: string;
  mode: 'closed' | 'open';
  requestedRate: number | null;
  seconds: number;
  sent: number;
  acked: number;
  failed: Record<string, number>;
  behind: number;
  sendsPerSecond: number;
  deliveries: number;
  deliveriesPerSecond: number;
  expectedDeliveries: number;
  lost: number;
  duplicates: number;
  unexpectedCloses: number;
  latencyMs: { count: number; p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  /** CPU of the server processes (gateways / peer) over the phase, µs. */
  serverCpuUs: number;
  cpuPerIncomingUs: number;
  cpuPerDeliveredUs: number;
  /** CPU of Parley's worker process (projector, analytics…) and of the load generator over the phase, µs. */
  supportCpuUs: number;
  /** NATS + Postgres CPU over the phase, µs (0 when they are not this run's own). */
  infraCpuUs: number;
  loadCpuUs: number;
  /** CPU over the phase, µs, per kind of server process (gateways, workers, nats, postgres); the load generator is not in it. */
  cpuUsBy: Record<string, number>;
  /** Every server process of the system (gateways + role processes + NATS + Postgres it uses; chDB runs inside the workers). */
  allServerCpuUs: number;
  allCpuPerSendUs: number;
  allCpuPerDeliveryUs: number;
  /** Acked sends per second of all-process server CPU. */
  sendsPerServerCpuSecond: number;
  wallSeconds: number;
}

export interface FanoutResult {
  topology: Topology;
  connections: number;
  /** Clients that could not connect after retries (left out of every expectation). */
  connectFailed: number;
  connectRetries: number;
  conversations: number;
  membersPerConversation: number;
  senders: number;
  connectSeconds: number;
  phases: PhaseResult[];
}

/**
 * Open loop: a sender with this many unacknowledged sends skips its turn (counted as `behind`), as a
 * client's send queue would hold back; the backlog stays bounded when the asked rate is out of reach,
 * so the next phase does not inherit it and latency means queueing, not an ever-growing pile.
 */
const MAX_UNACKED_PER_SENDER = 4;

/**
 * Send -> store -> deliver: every member of every conversation is connected;
 * senders send bench messages (stamped with their send time); every member
 * connection, the sender's own included, must receive each stored message
 * exactly once. Phases run closed loop (as fast as acknowledgements allow)
 * or open loop (a fixed rate, on schedule, so queueing shows in latency).
 */
export async function runFanout(
  target: Target,
  pool: LoadPool,
  spec: FanoutSpec,
  phases: PhaseSpec[],
  tag: string,
  log: (s: string) => void,
  profileDir?: string,
): Promise<FanoutResult> {
  const users = (c: number) => Array.from({ length: spec.members }, (_, m) => `${tag}-${spec.topology}-${c}-${m}`);
  const convSpecs: ConvSpec[] = Array.from({ length: spec.conversations }, (_, c) => ({ kind: spec.topology, members: users(c) }));
  const ids = await target.createConversations(convSpecs);
  await target.settle();
  let sender = 0;
  const clients: ClientSpec[] = convSpecs.flatMap((cs, c) =>
    cs.members.map((user, m) => ({
      user,
      gw: (c * spec.members + m) % target.urls.length,
      convs: [ids[c]!],
      ...(m < spec.senders ? { sends: [ids[c]!], sender: sender++ } : {}),
    })),
  );
  const set = `fanout-${spec.topology}`;
  const conn = await pool.connect(set, clients);
  log(
    `  ${spec.topology}: ${conn.connected} connections (${spec.conversations} × ${spec.members}, ${sender} senders) in ${conn.seconds.toFixed(1)} s, ${conn.retries} retries, ${conn.failed} never got in`,
  );
  if (conn.failed) log(`  ${spec.topology}: connect errors: ${conn.errors.slice(0, 3).join('; ')}`);

  const results: PhaseResult[] = [];
  let lastMax = 0;
  for (const [i, phase] of phases.entries()) {
    // The read model catches up with the previous phase first, so its backlog's CPU is not charged to this one.
    if (i > 0) await target.settle();
    await pool.reset();
    const rate = phase.mode === 'open' ? (typeof phase.rate === 'number' ? phase.rate : Math.max(1, Math.round(lastMax * (phase.rate?.ofMax ?? 0.5)))) : 0;
    const server0 = sampleProcesses(target.serverPids);
    const support0 = sampleProcesses(target.supportPids);
    const infraGroups = target.infra ?? {};
    const infra0 = Object.fromEntries(Object.entries(infraGroups).map(([k, cpuUs]) => [k, cpuUs()]));
    const load0 = await pool.cpuUs();
    const profiling = profileDir && target.profile ? target.profile : null;
    await profiling?.start();
    const t0 = performance.now();
    const run = await pool.run({
      sets: [set],
      mode: phase.mode,
      durationMs: phase.seconds * 1000,
      window: phase.window ?? 4,
      rate,
      maxInflightPerSender: MAX_UNACKED_PER_SENDER,
    });
    const drain = await pool.drain([set], run.ackedByConv);
    const wallSeconds = (performance.now() - t0) / 1000;
    if (profiling) {
      const file = path.join(profileDir!, `${target.name}-${spec.topology}-${phase.name.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`);
      await profiling.stop(file);
      log(`  ${spec.topology} ${phase.name}: gateway CPU profile in ${file}`);
    }
    const server1 = sampleProcesses(target.serverPids);
    const support1 = sampleProcesses(target.supportPids);
    const infra1 = Object.fromEntries(Object.entries(infraGroups).map(([k, cpuUs]) => [k, cpuUs()]));
    const load1 = await pool.cpuUs();
    const serverCpuUs = server1.cpuUs - server0.cpuUs;
    const supportCpuUs = support1.cpuUs - support0.cpuUs;
    const cpuUsBy: Record<string, number> = {
      [target.name === 'peer' ? 'server' : 'gateways']: serverCpuUs,
      ...(target.supportPids.length ? { workers: supportCpuUs } : {}),
    };
    for (const k of Object.keys(infraGroups)) cpuUsBy[k] = Math.max(0, infra1[k]! - infra0[k]!);
    const infraCpuUs = Object.keys(infraGroups).reduce((a, k) => a + cpuUsBy[k]!, 0);
    const allServerCpuUs = serverCpuUs + supportCpuUs + infraCpuUs;
    const r: PhaseResult = {
      name: phase.name,
      mode: phase.mode,
      requestedRate: phase.mode === 'open' ? rate : null,
      seconds: run.sendSeconds,
      sent: run.sent,
      acked: run.acked,
      failed: run.failed,
      behind: run.behind,
      sendsPerSecond: run.acked / run.sendSeconds,
      deliveries: drain.received,
      deliveriesPerSecond: drain.received / run.sendSeconds,
      expectedDeliveries: drain.expected,
      lost: drain.lost,
      duplicates: drain.duplicates,
      unexpectedCloses: drain.unexpectedCloses,
      latencyMs: drain.latency.summaryMs(),
      serverCpuUs,
      cpuPerIncomingUs: run.acked ? serverCpuUs / run.acked : 0,
      cpuPerDeliveredUs: drain.received ? serverCpuUs / drain.received : 0,
      supportCpuUs,
      infraCpuUs,
      loadCpuUs: load1 - load0,
      cpuUsBy,
      allServerCpuUs,
      allCpuPerSendUs: run.acked ? allServerCpuUs / run.acked : 0,
      allCpuPerDeliveryUs: drain.received ? allServerCpuUs / drain.received : 0,
      sendsPerServerCpuSecond: allServerCpuUs ? run.acked / (allServerCpuUs / 1e6) : 0,
      wallSeconds,
    };
    if (phase.mode === 'closed') lastMax = r.sendsPerSecond;
    results.push(r);
    log(
      `  ${spec.topology} ${phase.name}: ${Math.round(r.sendsPerSecond)} sends/s, ${Math.round(r.deliveriesPerSecond)} deliveries/s, p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms, ` +
        `lost ${r.lost} dup ${r.duplicates}, gateway CPU ${r.cpuPerIncomingUs.toFixed(1)} µs/in, all server processes ${r.allCpuPerSendUs.toFixed(1)} µs/send ${r.allCpuPerDeliveryUs.toFixed(2)} µs/delivery` +
        (Object.keys(r.failed).length ? `, failed ${JSON.stringify(r.failed)}` : '') +
        (r.behind ? `, behind ${r.behind}` : ''),
    );
  }
  await pool.closeAll();
  return {
    topology: spec.topology,
    connections: conn.connected,
    connectFailed: conn.failed,
    connectRetries: conn.retries,
    conversations: spec.conversations,
    membersPerConversation: spec.members,
    senders: sender,
    connectSeconds: conn.seconds,
    phases: results,
  };
}
