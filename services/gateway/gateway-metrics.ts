import type { MetricsRegistry } from '../shared/metrics.js';
import { errorCounter } from './http/http-metrics.js';

/** What the WebSocket server reports; each call is one addition to a number. */
export interface SocketMetrics {
  frameIn(): void;
  frameOut(count?: number): void;
  error(code: string): void;
}

export interface GatewayMetrics {
  sockets: SocketMetrics;
  /** One live event fanned out by uWebSockets to `recipients` sockets. */
  fanout(recipients: number): void;
  /** Reads connection and subscription counts at every scrape. */
  observe(connections: () => number, liveSubscriptions: () => number): void;
}

export function gatewayMetrics(registry: MetricsRegistry): GatewayMetrics {
  const framesIn = registry.counter('parley_ws_frames_in_total', 'WebSocket frames received from clients.').labels();
  const framesOut = registry.counter('parley_ws_frames_out_total', 'WebSocket frames sent to clients: direct replies, and live events counted once per recipient socket.', ['kind']);
  const direct = framesOut.labels({ kind: 'direct' });
  const live = framesOut.labels({ kind: 'live' });
  const errors = errorCounter(registry);
  const connections = registry.gauge('parley_ws_connections', 'Open WebSocket connections on this gateway.').labels();
  const subscriptions = registry.gauge('parley_live_subscriptions', 'Entities this gateway holds a live NATS subscription for (one per entity, whatever the local sockets).').labels();
  return {
    sockets: {
      frameIn: () => framesIn.inc(),
      frameOut: (count = 1) => direct.inc(count),
      error: (code) => errors.inc({ code, transport: 'ws' }),
    },
    fanout: (recipients) => live.inc(recipients),
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
