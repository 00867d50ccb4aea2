import type { FanoutSpec, PhaseSpec } from './scenarios/fanout.js';
import type { StormSpec } from './scenarios/storm.js';

export interface Scale {
  name: 'smoke' | 'full';
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
}

/** A few seconds in CI: every scenario at tiny size, to keep the harness working (figures meaningless). */
export const SMOKE: Scale = {
  name: 'smoke',
  loadWorkers: 2,
  fanout: [
    { spec: { topology: 'direct', conversations: 10, members: 2, senders: 2 }, phases: [{ name: 'max', mode: 'closed', seconds: 0.5, window: 2 }, { name: 'half of max', mode: 'open', seconds: 0.5, rate: { ofMax: 0.5 } }] },
    { spec: { topology: 'group', conversations: 2, members: 10, senders: 10 }, phases: [{ name: 'max', mode: 'closed', seconds: 0.5, window: 1 }, { name: '100/s', mode: 'open', seconds: 0.5, rate: 100 }] },
    { spec: { topology: 'channel', conversations: 1, members: 20, senders: 2 }, phases: [{ name: 'max', mode: 'closed', seconds: 0.5, window: 2 }] },
  ],
  idleConnections: 20,
  storm: { clients: 200, groupSize: 10, maxMissed: 5, groupsPerWriter: 10, deadlineSeconds: 60 },
  stormTargetClients: null,
  freshTargets: false,
  settleMs: 200,
  external: 'smoke',
};

/** The recorded run (see docs/benchmarks.md): the brief's sizes where this machine's limits allow. */
export function fullScale(sustainSeconds: number): Scale {
  return {
    name: 'full',
    loadWorkers: 4,
    fanout: [
      {
        spec: { topology: 'direct', conversations: 500, members: 2, senders: 2 },
        phases: [
          { name: 'max', mode: 'closed', seconds: 20, window: 4 },
          { name: 'half of max', mode: 'open', seconds: 20, rate: { ofMax: 0.5 } },
        ],
      },
      {
        spec: { topology: 'group', conversations: 100, members: 10, senders: 10 },
        phases: [
          { name: 'max', mode: 'closed', seconds: 20, window: 2 },
          { name: 'half of max', mode: 'open', seconds: 20, rate: { ofMax: 0.5 } },
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
  };
}
