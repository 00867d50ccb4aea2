import type { MetricsRegistry } from '../observability/metrics.js';
import { errorCounter } from './http/http-metrics.js';

/** What the WebSocket server reports; each call is one addition to a number. */
export interface SocketMetrics {
  frameIn(): void;
  frameOut(count?: number): void;
  error(code: string): void;
  /** A command answered with an ack, `seconds` after its frame arrived. */
  acked(command: string, seconds: number): void;
}

export interface GatewayMetrics {
  sockets: SocketMetrics;
  /** One live event fanned out by uWebSockets to `recipients` sockets. */
  fanout(recipients: number): void;
  /** A message delivered live here `seconds` after its event's `at` (the writing gateway's clock, ms precision). */
  delivered(seconds: number): void;
  /** Reads connection and subscription counts at every scrape. */
  observe(connections: () => number, liveSubscriptions: () => number): void;
}

export function gatewayMetrics(registry: MetricsRegistry): GatewayMetrics {
  const framesIn = registry.counter('parley_ws_frames_in_total', 'WebSocket frames received from clients.').labels();
  const framesOut = registry.counter(
    'parley_ws_frames_out_total',
    'WebSocket frames sent to clients: direct replies, and live events counted once per recipient socket.',
    ['kind'],
  );
  const direct = framesOut.labels({ kind: 'direct' });
  const live = framesOut.labels({ kind: 'live' });
  const errors = errorCounter(registry);
  const connections = registry.gauge('parley_ws_connections', 'Open WebSocket connections on this gateway.').labels();
  const ackSeconds = registry.histogram(
    'parley_send_to_ack_seconds',
    "Time from a command frame's receipt to its ack on this gateway, by command (send, edit, ...).",
    ['command', 'role'],
  );
  const ackByCommand = new Map<string, ReturnType<typeof ackSeconds.labels>>();
  const deliverSeconds = registry
    .histogram(
      'parley_send_to_deliver_seconds',
      "Time from a message event's `at` (stamped by the gateway that appended it) to its live delivery on this gateway.",
      ['role'],
    )
    .labels({ role: 'gateway' });
  const subscriptions = registry
    .gauge('parley_live_subscriptions', 'Entities this gateway holds a live NATS subscription for (one per entity, whatever the local sockets).')
    .labels();
  return {
    sockets: {
      frameIn: () => framesIn.inc(),
      frameOut: (count = 1) => direct.inc(count),
      error: (code) => errors.inc({ code, transport: 'ws' }),
      acked(command, seconds) {
        let child = ackByCommand.get(command);
        if (!child) ackByCommand.set(command, (child = ackSeconds.labels({ command, role: 'gateway' })));
        child.observe(seconds);
      },
    },
    fanout: (recipients) => live.inc(recipients),
    // Clocks of two gateways may differ by a few ms: a negative difference counts as 0 rather than vanishing.
    delivered: (seconds) => deliverSeconds.observe(Math.max(0, seconds)),
    observe(connectionCount, subscriptionCount) {
      registry.onCollect(() => {
        connections.set(connectionCount());
        subscriptions.set(subscriptionCount());
      });
    },
  };
}

/** The content type of the Prometheus text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
