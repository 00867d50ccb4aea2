import { z } from 'zod';
import type { FanoutResult, PhaseResult } from './scenarios/fanout.js';
import type { SuiteResult, SystemName } from './suite.js';

/**
 * bench-results/latest.json (issue 16): one object per system and send
 * scenario, for scripts and for comparing runs without reading markdown.
 * CPU figures count every server process of the system (gateways, role
 * processes, NATS, Postgres; chDB runs inside Parley's workers process),
 * never the load generator.
 */
export interface SummaryRow {
  system: SystemName;
  /** `direct` (1:1), `group10`, `channel1000` (the member count is in the name: the smoke run's channel is smaller). */
  scenario: string;
  maxSendsPerSec: number | null;
  /** All-process server CPU per acked send, µs, from the CPU phase (see cpuPhase). */
  serverCpuUsPerSend: number | null;
  sendsPerCpuSecond: number | null;
  /** Which phase the two CPU figures come from. */
  cpuPhase: string | null;
  half: { sendsPerSec: number; p50Ms: number; p99Ms: number } | null;
  /** The fixed 1,000 sends/s phase (1:1 and groups); null where the scenario has none (channel). */
  at1000: { sendsPerSec: number; p50Ms: number; p99Ms: number } | null;
  lost: number;
  duplicated: number;
}

export function scenarioName(f: Pick<FanoutResult, 'topology' | 'membersPerConversation'>): string {
  return f.topology === 'direct' ? 'direct' : `${f.topology}${f.membersPerConversation}`;
}

const isAt1000 = (p: PhaseResult) => p.mode === 'open' && p.requestedRate === 1000;

/**
 * CPU per send is compared at the same offered load for both systems: the
 * 1,000/s phase where there is one, else half of max, else max (a saturated
 * phase would reward whichever system batches more under backlog).
 */
function cpuPhase(f: FanoutResult): PhaseResult | undefined {
  return f.phases.find(isAt1000) ?? f.phases.find((p) => p.name === 'half of max') ?? f.phases.find((p) => p.name === 'max');
}

const round = (n: number, digits: number) => Number(n.toFixed(digits));
const latency = (p: PhaseResult | undefined) => (p ? { sendsPerSec: round(p.sendsPerSecond, 1), p50Ms: p.latencyMs.p50, p99Ms: p.latencyMs.p99 } : null);

export function summarize(r: Pick<SuiteResult, 'parley' | 'peer'>): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const system of ['parley', 'peer'] as const) {
    for (const f of r[system].fanout) {
      const cpu = cpuPhase(f);
      const max = f.phases.find((p) => p.name === 'max');
      rows.push({
        system,
        scenario: scenarioName(f),
        maxSendsPerSec: max ? round(max.sendsPerSecond, 1) : null,
        serverCpuUsPerSend: cpu?.acked && cpu.allCpuPerSendUs !== undefined ? round(cpu.allCpuPerSendUs, 1) : null,
        sendsPerCpuSecond: cpu?.allServerCpuUs ? round(cpu.sendsPerServerCpuSecond, 1) : null, // null too for runs recorded before the figure existed
        cpuPhase: cpu?.name ?? null,
        half: latency(f.phases.find((p) => p.name === 'half of max')),
        at1000: latency(f.phases.find(isAt1000)),
        lost: f.phases.reduce((a, p) => a + p.lost, 0),
        duplicated: f.phases.reduce((a, p) => a + p.duplicates, 0),
      });
    }
  }
  return rows;
}

const latencySchema = z.object({ sendsPerSec: z.number().nonnegative(), p50Ms: z.number().nonnegative(), p99Ms: z.number().nonnegative() }).strict();
const nullableFigure = z.number().nonnegative().nullable();

/** The published shape of latest.json (what scripts may rely on; checked by the unit and smoke tests). */
export const latestJsonSchema = z.array(
  z
    .object({
      system: z.enum(['parley', 'peer']),
      scenario: z.string().regex(/^(direct|group\d+|channel\d+)$/),
      maxSendsPerSec: nullableFigure,
      serverCpuUsPerSend: nullableFigure,
      sendsPerCpuSecond: nullableFigure,
      cpuPhase: z.string().nullable(),
      half: latencySchema.nullable(),
      at1000: latencySchema.nullable(),
      lost: z.number().int().nonnegative(),
      duplicated: z.number().int().nonnegative(),
    })
    .strict(),
);
