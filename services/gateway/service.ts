import type { Authenticator } from '../shared/auth.js';
import type { HealthCheck } from '../shared/health.js';
import type { Runtime } from '../shared/runtime.js';
import { SnowflakeGenerator } from '../shared/snowflake.js';
import { ConversationCommands } from '../shared/write/conversation-commands.js';
import { HttpRouter } from './http/router.js';
import { registerRoutes } from './http/routes.js';
import { ReadModel } from './read-model.js';
import { loadNativeUws, type us_listen_socket } from './uws.js';
import { LiveHub } from './ws/live-hub.js';
import { SocketServer } from './ws/socket-server.js';

export interface GatewayService {
  /** The port actually listened on (useful when configured as 0). */
  port: number;
  sockets: SocketServer;
  hub: LiveHub;
  stop(): Promise<void>;
}

export interface GatewayDeps {
  auth: Authenticator;
  /** Extra dependency checks for /healthz besides NATS, Postgres and ClickHouse. */
  healthChecks?: Record<string, HealthCheck>;
}

export async function startGateway(runtime: Runtime, deps: GatewayDeps): Promise<GatewayService> {
  const uWS = loadNativeUws();
  const { config, log } = runtime;
  const app = uWS.App();
  const shard = runtime.shards[0]!;
  const readModel = new ReadModel(runtime.db);
  const commands = new ConversationCommands({
    store: runtime.store,
    subjects: runtime.subjects,
    shard,
    ids: new SnowflakeGenerator(config.nodeId),
    log: log.child({ component: 'commands' }),
    idempotency: readModel,
  });
  const hub = new LiveHub(runtime.nats.nc, runtime.subjects, shard, (topic, frame) => app.publish(topic, frame, false), log.child({ component: 'hub' }));
  const sockets = new SocketServer({ config, log, auth: deps.auth, commands, readModel, hub });
  sockets.attach(app);

  const healthChecks: Record<string, HealthCheck> = {
    nats: async () => {
      if (runtime.nats.nc.isClosed()) throw new Error('connection closed');
      const info = await runtime.nats.jsm.streams.info(shard.stream);
      return `stream ${shard.stream} at seq ${info.state.last_seq}`;
    },
    postgres: async () => {
      await runtime.db.selectFrom('projector_checkpoints').select('seq').limit(1).execute();
    },
    clickhouse: async () => {
      const r = await runtime.clickhouse.ping();
      if (!r.success) throw r.error;
    },
    ...deps.healthChecks,
  };
  const router = new HttpRouter(app, log.child({ component: 'http' }), config.gateway.maxBodyBytes);
  registerRoutes(router, { auth: deps.auth, commands, readModel, healthChecks });
  router.fallback();

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.gateway.host, config.gateway.port, (s) => (s ? resolve(s) : reject(new Error(`cannot listen on ${config.gateway.host}:${config.gateway.port}`))));
  });
  const port = uWS.us_socket_local_port(listenSocket);
  log.info('gateway listening', { host: config.gateway.host, port, ws: '/v1/ws' });

  return {
    port,
    sockets,
    hub,
    async stop() {
      uWS.us_listen_socket_close(listenSocket);
      sockets.closeAll();
      hub.close();
      // Let close frames flush before the process moves on.
      await new Promise((r) => setTimeout(r, 50));
    },
  };
}
