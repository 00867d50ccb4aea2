import type { HistogramSnapshot } from '../lib/histogram.js';

/** One simulated client, as the runner hands it to a load process. */
export interface ClientSpec {
  user: string;
  /** Which server URL (gateway) it connects to. */
  gw: number;
  /** Conversations it is a member of: each bench message sent there must reach it exactly once. */
  convs: string[];
  /** Conversations it sends to, round-robin (senders only). */
  sends?: string[];
  /** Its globally unique sender number, carried in every message it sends. */
  sender?: number;
  /** Keep the device position from every event (clients that will resume). */
  trackPosition?: boolean;
}

export interface ConnectResult {
  connected: number;
  failed: number;
  /** Connections lost before they were live and tried again (see docs/benchmarks.md). */
  retries: number;
  errors: string[];
  seconds: number;
}

export interface RunRequest {
  sets: string[];
  /** `closed`: each sender keeps `window` sends in flight; `open`: `rate` sends/s in total, on schedule. */
  mode: 'closed' | 'open';
  durationMs: number;
  window: number;
  rate: number;
  /** Open loop: a sender with this many unanswered sends skips its turn (counted as `behind`). */
  maxInflightPerSender: number;
}

export interface RunResult {
  sent: number;
  acked: number;
  ackedByConv: Record<string, number>;
  /** Sends answered with an error, by code (or `timeout` / `closed`). */
  failed: Record<string, number>;
  /** Open loop: sends skipped because the sender had too many unanswered. */
  behind: number;
  /** Sends still unanswered when the process stopped waiting. */
  unanswered: number;
  sendSeconds: number;
}

export interface DrainResult {
  expected: number;
  received: number;
  duplicates: number;
  lost: number;
  unexpectedCloses: number;
  latency: HistogramSnapshot;
}

export interface StormResult {
  clients: number;
  resumed: number;
  failed: number;
  retries: number;
  /** Continuity answers (Parley) or recovery outcomes (peer), counted. */
  statuses: Record<string, number>;
  /** Clients that had not received exactly the messages they missed by the time they were resumed. */
  wrongCount: number;
  duplicates: number;
  replayed: number;
  received: number;
  /** Time from the storm's start to each client being resumed, µs. */
  times: HistogramSnapshot;
  errors: string[];
}
