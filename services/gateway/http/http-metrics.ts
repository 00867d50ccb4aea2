import type { MetricsRegistry } from '../../observability/metrics.js';

/** What the HTTP router reports: request latency by route and status, and errors by stable code. */
export interface HttpMetrics {
  observe(route: string, method: string, status: number, seconds: number): void;
  error(code: string): void;
}

export function httpMetrics(registry: MetricsRegistry): HttpMetrics {
  const seconds = registry.histogram('parley_http_request_seconds', 'HTTP request latency by route pattern, method and status.', ['route', 'method', 'status']);
  const errors = errorCounter(registry);
  return {
    // Labelled by route pattern, never by path: ids in paths would make one series per conversation.
    observe: (route, method, status, s) => seconds.observe({ route, method, status: String(status) }, s),
    error: (code) => errors.inc({ code, transport: 'http' }),
  };
}

/** Errors answered to clients by stable code (contracts/errors.ts) and transport (http, ws). */
export function errorCounter(registry: MetricsRegistry) {
  return registry.counter('parley_errors_total', 'Errors answered to clients, by stable error code and transport.', ['code', 'transport']);
}
