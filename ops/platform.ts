import type { GatewayService } from '../services/gateway/service.js';
import { startAnalytics, type AnalyticsService } from '../services/analytics/service.js';
import { startGateway } from '../services/gateway/service.js';
import { MembershipReactor } from '../services/membership/reactor.js';
import { startNotifier, type NotifierService } from '../services/notifier/service.js';
import { startProjector, type ProjectorService } from '../services/projector/service.js';
import { createAuthenticator } from '../services/shared/auth.js';
import { enforceExposure } from '../services/shared/exposure.js';
import { projectorLagCheck } from '../services/shared/projection/health.js';
import type { Config } from '../services/shared/config.js';
import type { Logger } from '../services/shared/logger.js';
import { openRuntime, type Runtime } from '../services/shared/runtime.js';

export interface Platform {
  runtime: Runtime;
  gateway: GatewayService;
  /** Present when this process runs the workers. */
  projector?: ProjectorService;
  /** ClickHouse analytics; present when this process runs the workers. */
  analytics?: AnalyticsService;
  /** Notifications for offline members; present when this process runs the workers. */
  notifier?: NotifierService;
  stop(): Promise<void>;
}

export interface PlatformOptions {
  natsUrl: string;
  databaseUrl: string;
  /** Run the projector and membership reactor here (a second gateway in the same deployment would not). */
  withWorkers?: boolean;
  /**
   * Another process took this one's node id (its lease lapsed, e.g. while the
   * process was frozen): the platform has stopped minting and must not go on.
   * Given: called (ops/start.ts exits 1, for a supervisor to restart it with a
   * fresh id). Omitted: the platform stops its services itself.
   */
  onNodeIdLost?: (reason: string) => void;
}

/**
 * Every service of the platform in one process, sharing one runtime: the
 * shape of `npm start` and of the tests. Each service can also run alone
 * from its own main.ts against external dependencies.
 */
export async function startPlatform(config: Config, log: Logger, options: PlatformOptions): Promise<Platform> {
  // Wherever the gateway starts: never exposed with development defaults unless the operator said so.
  const exposure = enforceExposure(config);
  if (exposure.action === 'warn') log.warn(exposure.message, { host: config.gateway.host });
  const runtime = await openRuntime(config, log, { natsUrl: options.natsUrl, databaseUrl: options.databaseUrl, name: config.nodeId === undefined ? 'parley' : `parley-${config.nodeId}` });
  const stops: (() => Promise<void>)[] = [];
  let projector: ProjectorService | undefined;
  let analytics: AnalyticsService | undefined;
  let notifier: NotifierService | undefined;
  try {
    if (options.withWorkers !== false) {
      projector = await startProjector(runtime);
      const started = projector;
      stops.push(() => started.stop());
      const membership = new MembershipReactor(runtime);
      await membership.start();
      stops.push(() => membership.stop());
      const startedAnalytics = (analytics = await startAnalytics(runtime));
      stops.push(() => startedAnalytics.stop());
      const startedNotifier = (notifier = await startNotifier(runtime));
      stops.push(() => startedNotifier.stop());
    }
    const auth = await createAuthenticator(config);
    // One `projector` check over every projection runner here: the read model's and the notifier's.
    const runners = [...(projector?.runners ?? []), ...(notifier ? [notifier.runner] : [])];
    const healthChecks = runners.length > 0 ? { projector: projectorLagCheck(runners, config.projector.maxHealthyLag) } : undefined;
    const gateway = await startGateway(runtime, { auth, ...(healthChecks ? { healthChecks } : {}) });
    stops.push(() => gateway.stop());
    let stopped: Promise<void> | undefined;
    const stop = () =>
      (stopped ??= (async () => {
        // Edge first, so no new work arrives while workers drain.
        for (const s of stops.reverse()) await s().catch((err) => log.error('stopping a service failed', { err }));
        await runtime.close();
      })());
    // Fail-stop: a process whose node id someone else now holds must not mint another id.
    runtime.nodeIdLease.onLost((reason) => {
      if (options.onNodeIdLost) options.onNodeIdLost(reason);
      else void stop();
    });
    return {
      runtime,
      gateway,
      ...(projector ? { projector } : {}),
      ...(analytics ? { analytics } : {}),
      ...(notifier ? { notifier } : {}),
      stop,
    };
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await runtime.close().catch(() => undefined);
    throw err;
  }
}
