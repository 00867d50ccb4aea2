import { describe, expect, it } from 'vitest';
import type { FanoutResult, PhaseResult, Topology } from './scenarios/fanout.js';
import { latestJsonSchema, summarize } from './summary.js';

/** A phase with the figures summarize() reads; CPU in µs over `acked` sends. */
function phase(
  name: string,
  o: {
    mode?: 'open' | 'closed';
    rate?: number;
    acked: number;
    seconds: number;
    cpuUs: number;
    p50: number;
    p99: number;
    lost?: number;
    dup?: number;
    members?: number;
  },
): PhaseResult {
  const mode = o.mode ?? (name === 'max' ? 'closed' : 'open');
  const deliveries = o.acked * (o.members ?? 10);
  return {
    name,
    mode,
    requestedRate: mode === 'open' ? (o.rate ?? null) : null,
    seconds: o.seconds,
    sent: o.acked,
    acked: o.acked,
    failed: {},
    behind: 0,
    sendsPerSecond: o.acked / o.seconds,
    deliveries,
    deliveriesPerSecond: deliveries / o.seconds,
    expectedDeliveries: deliveries,
    lost: o.lost ?? 0,
    duplicates: o.dup ?? 0,
    unexpectedCloses: 0,
    latencyMs: { count: o.acked, p50: o.p50, p90: o.p99, p99: o.p99, p999: o.p99, max: o.p99, mean: o.p50 },
    serverCpuUs: o.cpuUs / 2,
    cpuPerIncomingUs: o.cpuUs / 2 / o.acked,
    cpuPerDeliveredUs: o.cpuUs / 2 / deliveries,
    supportCpuUs: o.cpuUs / 4,
    infraCpuUs: o.cpuUs / 4,
    loadCpuUs: 999_999_999, // never part of the server's figures
    cpuUsBy: { gateways: o.cpuUs / 2, workers: o.cpuUs / 4, nats: o.cpuUs / 8, postgres: o.cpuUs / 8 },
    allServerCpuUs: o.cpuUs,
    allCpuPerSendUs: o.cpuUs / o.acked,
    allCpuPerDeliveryUs: o.cpuUs / deliveries,
    sendsPerServerCpuSecond: o.acked / (o.cpuUs / 1e6),
    wallSeconds: o.seconds,
  };
}

const fanout = (topology: Topology, members: number, phases: PhaseResult[]): FanoutResult => ({
  topology,
  connections: 100,
  connectFailed: 0,
  connectRetries: 0,
  conversations: 10,
  membersPerConversation: members,
  senders: 10,
  connectSeconds: 1,
  phases,
});

const system = (fanouts: FanoutResult[]) => ({ fanout: fanouts, idle: null, storm: null, notes: [] });

describe('bench-results/latest.json', () => {
  const result = {
    parley: system([
      fanout('direct', 2, [
        phase('max', { acked: 40_000, seconds: 10, cpuUs: 8e6, p50: 9, p99: 40, members: 2 }),
        phase('half of max', { acked: 20_000, seconds: 10, cpuUs: 5e6, p50: 3, p99: 20, members: 2 }),
        phase('1,000/s', { rate: 1000, acked: 10_000, seconds: 10, cpuUs: 2e6, p50: 1.5, p99: 12, members: 2 }),
      ]),
      fanout('group', 10, [
        phase('max', { acked: 30_000, seconds: 10, cpuUs: 9e6, p50: 20, p99: 80, lost: 1 }),
        phase('half of max', { acked: 15_000, seconds: 10, cpuUs: 6e6, p50: 4, p99: 30 }),
        phase('1,000/s', { rate: 1000, acked: 10_000, seconds: 10, cpuUs: 4e6, p50: 2, p99: 14, dup: 2 }),
      ]),
      fanout('channel', 1000, [
        phase('max', { acked: 1000, seconds: 10, cpuUs: 5e6, p50: 50, p99: 200, members: 1000 }),
        phase('half of max', { acked: 500, seconds: 10, cpuUs: 3e6, p50: 10, p99: 60, members: 1000 }),
      ]),
    ]),
    peer: system([
      fanout('group', 10, [
        phase('max', { acked: 20_000, seconds: 10, cpuUs: 10e6, p50: 30, p99: 90 }),
        phase('half of max', { acked: 10_000, seconds: 10, cpuUs: 5e6, p50: 2, p99: 9 }),
      ]),
    ]),
  };

  it('has one object per system and scenario, CPU from the 1,000/s phase when there is one', () => {
    const rows = summarize(result);
    expect(latestJsonSchema.parse(rows)).toEqual(rows);
    expect(rows.map((r) => `${r.system}/${r.scenario}`)).toEqual(['parley/direct', 'parley/group10', 'parley/channel1000', 'peer/group10']);
    const group = rows[1]!;
    expect(group).toEqual({
      system: 'parley',
      scenario: 'group10',
      maxSendsPerSec: 3000,
      serverCpuUsPerSend: 400, // 4 s of all-process CPU over 10,000 sends at 1,000/s; not the load generator's
      sendsPerCpuSecond: 2500,
      cpuPhase: '1,000/s',
      half: { sendsPerSec: 1500, p50Ms: 4, p99Ms: 30 },
      at1000: { sendsPerSec: 1000, p50Ms: 2, p99Ms: 14 },
      lost: 1,
      duplicated: 2,
    });
    // Without a 1,000/s phase (the channel, the peer here): CPU from half of max, at1000 null.
    expect(rows[2]).toMatchObject({ scenario: 'channel1000', cpuPhase: 'half of max', serverCpuUsPerSend: 6000, sendsPerCpuSecond: 166.7, at1000: null });
    expect(rows[3]).toMatchObject({ system: 'peer', serverCpuUsPerSend: 500, sendsPerCpuSecond: 2000, at1000: null });
  });

  it('refuses objects that miss a field or carry a wrong scenario name', () => {
    const [row] = summarize(result);
    for (const bad of [
      { ...row, scenario: 'group' },
      { ...row, system: 'other' },
      { ...row, half: { p50Ms: 1, p99Ms: 2 } },
      (({ at1000: _, ...rest }) => rest)(row!),
      { ...row, serverCpuUsPerSend: -1 },
    ]) {
      expect(latestJsonSchema.safeParse([bad]).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
