import type { GatewayService } from '../services/gateway/service.js';
import { startGateway } from '../services/gateway/service.js';
import { MembershipReactor } from '../services/membership/reactor.js';
import { startProjector, type ProjectorService } from '../services/projector/service.js';
import { createAuthenticator } from '../services/shared/auth.js';
import type { Config } from '../services/shared/config.js';
import type { Logger } from '../services/shared/logger.js';
import { openRuntime, type Runtime } from '../services/shared/runtime.js';

export interface Platform {
  runtime: Runtime;
  gateway: GatewayService;
  /** Present when this process runs the workers. */
  projector?: ProjectorService;
  stop(): Promise<void>;
}

export interface PlatformOptions {
  natsUrl: string;
  databaseUrl: string;
  /** Run the projector and membership reactor here (a second gateway in the same deployment would not). */
  withWorkers?: boolean;
}

/**
 * Every service of the platform in one process, sharing one runtime: the
 * shape of `npm start` and of the tests. Each service can also run alone
 * from its own main.ts against external dependencies.
 */
export async function startPlatform(config: Config, log: Logger, options: PlatformOptions): Promise<Platform> {
  const runtime = await openRuntime(config, log, { natsUrl: options.natsUrl, databaseUrl: options.databaseUrl, name: `parley-${config.nodeId}` });
  const stops: (() => Promise<void>)[] = [];
  let projector: ProjectorService | undefined;
  try {
    if (options.withWorkers !== false) {
      projector = await startProjector(runtime);
      const started = projector;
      stops.push(() => started.stop());
      const membership = new MembershipReactor(runtime);
      await membership.start();
      stops.push(() => membership.stop());
    }
    const auth = await createAuthenticator(config);
    const gateway = await startGateway(runtime, { auth, ...(projector ? { healthChecks: { projector: projector.healthCheck } } : {}) });
    stops.push(() => gateway.stop());
    return {
      runtime,
      gateway,
      ...(projector ? { projector } : {}),
      async stop() {
        // Edge first, so no new work arrives while workers drain.
        for (const s of stops.reverse()) await s().catch((err) => log.error('stopping a service failed', { err }));
        await runtime.close();
      },
    };
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await runtime.close().catch(() => undefined);
    throw err;
  }
}
