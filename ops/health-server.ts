import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROMETHEUS_CONTENT_TYPE } from '../services/gateway/gateway-metrics.js';
import { healthStatusCode, requiredChecks, runHealthChecks, type HealthCheck } from '../services/observability/health.js';
import type { Runtime } from '../services/runtime/runtime.js';

export interface HealthServer {
  port: number;
  stop(): Promise<void>;
}

/**
 * /healthz and /metrics for a process without the gateway role (one running
 * only projectors, say), on HOST:PORT like a gateway: a supervisor or load
 * balancer probes every Parley process the same way. Answers as the
 * gateway's: /healthz 200 when every check passes, 503 otherwise; /readyz
 * 200 when what the active roles need is up; a standby role is healthy and
 * says so in the `roles` check.
 */
export async function startHealthServer(
  runtime: Runtime,
  extra: Record<string, HealthCheck>,
  required: () => readonly string[] = () => requiredChecks([]),
): Promise<HealthServer> {
  const { config, log } = runtime;
  const checks: Record<string, HealthCheck> = {
    nats: async () => {
      if (runtime.nats.nc.isClosed()) throw new Error('connection closed');
      await runtime.nats.jsm.getAccountInfo();
    },
    postgres: async () => {
      await runtime.db.selectFrom('projector_checkpoints').select('seq').limit(1).execute();
    },
    clickhouse: async () => {
      const r = await runtime.clickhouse.ping();
      if (!r.success) throw r.error;
    },
    ...extra,
  };
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET') return reply(405, JSON.stringify({ error: { code: 'method_not_allowed', message: 'GET only' } }), 'application/json');
    if (path === '/healthz' || path === '/readyz') {
      void runHealthChecks(checks, required()).then(
        (h) => reply(healthStatusCode(path, h), JSON.stringify(h), 'application/json'),
        (err: unknown) => reply(503, JSON.stringify({ status: 'down', detail: String(err) }), 'application/json'),
      );
      return;
    }
    if (path === '/metrics') {
      void runtime.metrics.render().then(
        (text) => reply(200, text, PROMETHEUS_CONTENT_TYPE),
        () => reply(500, '', 'text/plain'),
      );
      return;
    }
    reply(
      404,
      JSON.stringify({ error: { code: 'not_found', message: 'only /healthz, /readyz and /metrics here (no gateway role in this process)' } }),
      'application/json',
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.gateway.port, config.gateway.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info('health endpoint listening (no gateway role here)', { host: config.gateway.host, port, paths: ['/healthz', '/readyz', '/metrics'] });
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
