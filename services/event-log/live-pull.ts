/**
 * Pull options for the long-lived consumers that follow the log (the
 * projection runner, the membership reactor, analytics). nats.js re-issues a
 * pull only after two missed idle heartbeats, and by default a pull lives
 * 30 s with a heartbeat every 15 s: after a stream leader change (node
 * killed, frozen or partitioned) a consumer sat idle for 30–60 s while the
 * log moved on (docs/reliability.md, chaos runs 6 and 7). With 5 s pulls
 * the heartbeat is 2.5 s and a lost pull is replaced within about 5 s; an
 * idle consumer costs one pull request per 5 s.
 */
export const LIVE_PULL_EXPIRES_MS = 5_000;
