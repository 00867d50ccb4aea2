import type { TokenBucket } from '../../limits/rate-limit.js';

/** What the gateway keeps per WebSocket (uWebSockets' user data). */
export interface ConnectionState {
  userId: string;
  connectionId: string;
  /** Token expiry, milliseconds since the epoch. */
  expiresAt: number;
  /** The sync position presented at connect (`?position=`), if any. */
  position: string | null;
  /** Live topics this connection holds a reference on. */
  topics: Set<string>;
  closed: boolean;
  /** Invalid frames in the current window; too many closes the connection. */
  badFrames: number;
  badFramesWindowStart: number;
  expiryTimer: NodeJS.Timeout | null;
  /** Frames per second from this connection. */
  frameBucket: TokenBucket;
  /** A rate_limited error frame went out for the current burst: further dropped frames get none until one is accepted. */
  rateLimitAnswered: boolean;
  /** True until the connection's resume has finished; membership changes are then handled by the resume. */
  syncing: boolean;
  /** Last typing signal forwarded, per conversation. */
  lastTyping: Map<string, number>;
}
