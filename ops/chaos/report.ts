import type { FaultOutcome } from './faults.js';

/**
 * Per fault and gateway: how long the first ack after the fault took, and
 * the longest stretch without any ack on that gateway while the fault was on
 * (from injection to recovery): what a client of that gateway saw as
 * unavailability. Recovery: from healing (restart, SIGCONT, partition
 * healed) to the stream's replicas all current again, or the process healthy.
 */
export interface FaultWindow {
  fault: FaultOutcome;
  perGateway: { gateway: string; firstAckMs: number | null; longestGapMs: number }[];
  recoveryMs: number;
}

export function faultWindows(faults: FaultOutcome[], ackTimes: Map<string, number[]>): FaultWindow[] {
  return faults.map((fault) => ({
    fault,
    recoveryMs: fault.recoveredAt - fault.healedAt,
    perGateway: [...ackTimes.keys()].sort().map((gateway) => {
      const times = [...ackTimes.get(gateway)!].sort((a, b) => a - b);
      const first = times.find((t) => t > fault.injectedAt);
      let longest = 0;
      let prev = fault.injectedAt;
      for (const t of times) {
        if (t <= fault.injectedAt) continue;
        longest = Math.max(longest, t - prev);
        prev = t;
        if (t > fault.recoveredAt) break;
      }
      if (prev <= fault.recoveredAt) longest = Math.max(longest, fault.recoveredAt - prev);
      return { gateway, firstAckMs: first === undefined ? null : first - fault.injectedAt, longestGapMs: longest };
    }),
  }));
}

export function formatWindows(windows: FaultWindow[], start: number): string[] {
  const s = (ms: number | null) => (ms === null ? 'none' : `${(ms / 1000).toFixed(1)} s`);
  return windows.map((w) => {
    const gws = w.perGateway.map((g) => `${g.gateway}: first ack ${s(g.firstAckMs)}, longest gap ${s(g.longestGapMs)}`).join('; ');
    return `  +${s(w.fault.injectedAt - start).padStart(7)}  ${w.fault.name.padEnd(26)} ${w.fault.target.padEnd(28)} held ${s(w.fault.healedAt - w.fault.injectedAt)}, recovered ${s(w.recoveryMs)} after healing, consumers caught up ${w.fault.caughtUpAt ? s(w.fault.caughtUpAt - w.fault.injectedAt) : 'never'} after the fault | ${gws}`;
  });
}
