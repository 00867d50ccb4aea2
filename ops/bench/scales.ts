import type { FanoutSpec, PhaseSpec } from './scenarios/fanout.js';
import type { StormSpec } from './scenarios/storm.js';

export interface Scale {
  name: 'smoke' | 'quick' | 'full';
  loadWorkers: number;
  fanout: { spec: FanoutSpec; phases: PhaseSpec[] }[];
  idleConnections: number;
  /** The comparable storm: one server process each; clients are capped to what one process's open-files limit holds. */
  storm: StormSpec;
  /** Parley's storm at the brief's size, over as many gateways as the open-files limit needs (null: skip). */
  stormTargetClients: number | null;
  /** A fresh server (and database) per scenario, so memory and caches start clean. */
  freshTargets: boolean;
  /** Pause before memory readings and for the read model to be still, ms (short in the smoke run). */
  settleMs: number;
  external: 'smoke' | 'full';
  /** Scenarios run when none are named (--only): the quick run only sends. */
  defaultScenarios?: ('fanout' | 'idle' | 'storm' | 'external')[];
  /** `--only scaleout`: Parley at R1 and R3 (a local 3-node NATS cluster), with one and two gateways. */
  scaleout: { spec: FanoutSpec; phases: PhaseSpec[] };
}

/** The fixed-rate phase every send scenario but the channel has: latency compared at the same load for both systems. */
const AT_1000: PhaseSpec = { name: '1,000/s', mode: 'open', seconds: 20, rate: 1000 };

/** Scale-out (groups of 10), per configuration: the ceiling, then the same fixed rate for every configuration. */
const SCALEOUT_PHASES: PhaseSpec[] = [
  { name: 'max', mode: 'closed', seconds: 15, window: 2 },
  { name: '1,000/s', mode: 'open', seconds: 15, rate: 1000 },
];

/** A few seconds in CI: every scenario at tiny size, to keep the harness working (figures meaningless). */
export const SMOKE: Scale = {
  name: 'smoke',
  loadWorkers: 2,
  fanout: [
    {
      spec: { topology: 'direct', conversations: 10, members: 2, senders: 2 },
      phases: [
        { name: 'max', mode: 'closed', seconds: 0.5, window: 2 },
        { name: 'half of max', mode: 'open', seconds: 0.5, rate: { ofMax: 0.5 } },
        { ...AT_1000, seconds: 0.5 },
      ],
    },
    {
      spec: { topology: 'group', conversations: 2, members: 10, senders: 10 },
      phases: [
        { name: 'max', mode: 'closed', seconds: 0.5, window: 1 },
        { name: 'half of max', mode: 'open', seconds: 0.5, rate: { ofMax: 0.5 } },
        { ...AT_1000, seconds: 0.5 },
      ],
    },
    { spec: { topology: 'channel', conversations: 1, members: 20, senders: 2 }, phases: [{ name: 'max', mode: 'closed', seconds: 0.5, window: 2 }] },
  ],
  idleConnections: 20,
  storm: { clients: 200, groupSize: 10, maxMissed: 5, groupsPerWriter: 10, deadlineSeconds: 60 },
  stormTargetClients: null,
  freshTargets: false,
  settleMs: 200,
  external: 'smoke',
  scaleout: {
    spec: { topology: 'group', conversations: 2, members: 10, senders: 10 },
    phases: [
      { name: 'max', mode: 'closed', seconds: 0.5, window: 1 },
      { name: '100/s', mode: 'open', seconds: 0.5, rate: 100 },
    ],
  },
};

/** `--scale quick`: groups of 10 and 1:1 for both systems in a few minutes (bench-results/latest.json included); not the recorded run. */
export const QUICK: Scale = {
  name: 'quick',
  loadWorkers: 2,
  fanout: [
    {
      spec: { topology: 'direct', conversations: 500, members: 2, senders: 2 },
      phases: [
        { name: 'max', mode: 'closed', seconds: 10, window: 4 },
        { name: 'half of max', mode: 'open', seconds: 10, rate: { ofMax: 0.5 } },
        { ...AT_1000, seconds: 10 },
      ],
    },
    {
      spec: { topology: 'group', conversations: 100, members: 10, senders: 10 },
      phases: [
        { name: 'max', mode: 'closed', seconds: 10, window: 2 },
        { name: 'half of max', mode: 'open', seconds: 10, rate: { ofMax: 0.5 } },
        { ...AT_1000, seconds: 10 },
      ],
    },
  ],
  idleConnections: 1000,
  storm: { clients: 1000, groupSize: 10, maxMissed: 5, groupsPerWriter: 10, deadlineSeconds: 60 },
  stormTargetClients: null,
  freshTargets: true,
  settleMs: 1000,
  external: 'smoke',
  defaultScenarios: ['fanout'],
  scaleout: { spec: { topology: 'group', conversations: 100, members: 10, senders: 10 }, phases: SCALEOUT_PHASES },
};

/** The recorded run (see docs/benchmarks.md): the brief's sizes where this machine's limits allow. */
export function fullScale(sustainSeconds: number): Scale {
  return {
    name: 'full',
    loadWorkers: 4,
    fanout: [
      {
        spec: { topology: 'direct', conversations: 500, members: 2, senders: 2 },
        phases: [{ name: 'max', mode: 'closed', seconds: 20, window: 4 }, { name: 'half of max', mode: 'open', seconds: 20, rate: { ofMax: 0.5 } }, AT_1000],
      },
      {
        spec: { topology: 'group', conversations: 100, members: 10, senders: 10 },
        phases: [
          { name: 'max', mode: 'closed', seconds: 20, window: 2 },
          { name: 'half of max', mode: 'open', seconds: 20, rate: { ofMax: 0.5 } },
          AT_1000,
          { name: 'brief half load 2,500/s', mode: 'open', seconds: 30, rate: 2500 },
          { name: `brief load 5,000/s for ${sustainSeconds} s`, mode: 'open', seconds: sustainSeconds, rate: 5000 },
        ],
      },
      {
        spec: { topology: 'channel', conversations: 1, members: 1000, senders: 10 },
        phases: [
          { name: 'max', mode: 'closed', seconds: 20, window: 4 },
          { name: 'half of max', mode: 'open', seconds: 20, rate: { ofMax: 0.5 } },
        ],
      },
    ],
    idleConnections: 19_000,
    storm: { clients: 19_000, groupSize: 10, maxMissed: 50, groupsPerWriter: 10, deadlineSeconds: 300 },
    stormTargetClients: 20_000,
    freshTargets: true,
    settleMs: 2000,
    external: 'full',
    scaleout: { spec: { topology: 'group', conversations: 100, members: 10, senders: 10 }, phases: SCALEOUT_PHASES },
  };
}
