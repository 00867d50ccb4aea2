/** What a connection reports once it is usable (after any replay). */
export interface Ready {
  /** Parley: `complete` / `resync_needed`; peer: `recovered` / `fresh`. */
  status: string;
  /** Events the server says it replayed (Parley), when known. */
  replayed?: number;
}

export type SendOutcome = 'ok' | 'duplicate' | string;

/** Called for every bench message a connection receives (fields from payload.parsed). */
export type OnBenchMessage = (sender: number, counter: number, sentAtUs: number) => void;

/**
 * One client connection, the same shape for Parley and the peer so every
 * scenario drives both identically.
 */
export interface BenchConn {
  /** (Re)connects; `resume` presents the saved position (Parley) or session (peer). */
  connect(resume: boolean): Promise<Ready>;
  send(conversationId: string, clientMsgId: string, text: string): Promise<SendOutcome>;
  /** Drops the transport the way a network blip would, keeping what a resume needs. */
  drop(): Promise<void>;
  close(): void;
  readonly isOpen: boolean;
  /** Closes seen while the connection was ready (not asked for by the bench). */
  unexpectedCloses: number;
}

export interface ConnOptions {
  url: string;
  token: string;
  /** A fresh source address for each connection attempt (see addresses.ts). */
  localAddress: () => string;
  onMessage: OnBenchMessage;
  /** Keep the device position from every event (storm clients only: it costs a little per frame). */
  trackPosition: boolean;
  timeoutMs: number;
}
