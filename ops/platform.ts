import os from 'node:os';
import type { GatewayService } from '../services/gateway/service.js';
import { enforceAnalyticsHttp } from '../services/analytics/http/plan.js';
import { startAnalytics, type AnalyticsService } from '../services/analytics/service.js';
import { startGateway } from '../services/gateway/service.js';
import { MembershipReactor } from '../services/membership/reactor.js';
import { startNotifier, type NotifierService } from '../services/notifier/service.js';
import { startProjector, type ProjectorService } from '../services/projector/service.js';
import { createAuthenticator } from '../services/auth/auth.js';
import { enforceExposure } from '../services/runtime/exposure.js';
import { requiredChecks, type HealthCheck } from '../services/observability/health.js';
import { projectorLagCheck } from '../services/projection/health.js';
import type { Config } from '../services/runtime/config.js';
import type { Logger } from '../services/observability/logger.js';
import { RoleLeases } from '../services/leases/role-lease.js';
import { SINGLE_ACTIVE_ROLES, type Role } from '../services/runtime/roles.js';
import { openRuntime, type Runtime } from '../services/runtime/runtime.js';
import { SingleActiveRole, type RoleStatus, type Stoppable } from '../services/leases/single-active.js';
import { startHealthServer, type HealthServer } from './health-server.js';

/** The roles one process runs (services/runtime/roles.ts) on one shared runtime. */
export interface RoleProcess {
  runtime: Runtime;
  roles: Role[];
  /** Present when this process runs the gateway role. */
  gateway?: GatewayService;
  /** /healthz and /metrics of a process without the gateway role (the gateway serves its own). */
  health?: HealthServer;
  /** The read model's projections, while this process is the active `projector`. */
  readonly projector?: ProjectorService | undefined;
  /** ClickHouse analytics, while this process is the active `analytics`. */
  readonly analytics?: AnalyticsService | undefined;
  /** Notifications for offline members, while this process is the active `notifier`. */
  readonly notifier?: NotifierService | undefined;
  /** Each single-active role of this process: active or standby (and who holds it). */
  roleStatus(): RoleStatus[];
  stop(): Promise<void>;
}

/** A process with the gateway role: the shape of `npm start` and of the tests. */
export interface Platform extends RoleProcess {
  gateway: GatewayService;
}

export interface PlatformOptions {
  natsUrl: string;
  databaseUrl: string;
  /** The roles to run; default: the configured ones (PARLEY_ROLES, every role unless set). */
  roles?: Role[];
  /** false: the gateway role only (kept for callers that predate `roles`). */
  withWorkers?: boolean;
  /**
   * Another process took this one's node id (its lease lapsed, e.g. while the
   * process was frozen): the platform has stopped minting and must not go on.
   * Given: called (ops/start.ts exits 1, for a supervisor to restart it with a
   * fresh id). Omitted: the platform stops its services itself.
   */
  onNodeIdLost?: (reason: string) => void;
}

/** startRoles with the gateway role among them (refused otherwise). */
export async function startPlatform(config: Config, log: Logger, options: PlatformOptions): Promise<Platform> {
  const roles = rolesOf(config, options);
  if (!roles.includes('gateway')) throw new Error(`startPlatform runs a gateway; roles ${roles.join(',')} have none (use startRoles)`);
  return (await startRoles(config, log, { ...options, roles })) as Platform;
}

function rolesOf(config: Config, options: PlatformOptions): Role[] {
  if (options.withWorkers === false) return ['gateway'];
  return options.roles ?? config.roles;
}

/**
 * Starts the given roles in this process, sharing one runtime. Any number of
 * processes may run the gateway role side by side; each single-active role
 * runs here only while this process holds its lease in NATS KV, and stands
 * by otherwise (services/leases/single-active.ts). Standbys are reported on
 * /healthz (`roles` check) and by roleStatus().
 */
export async function startRoles(config: Config, log: Logger, options: PlatformOptions): Promise<RoleProcess> {
  const roles = rolesOf(config, options);
  const withGateway = roles.includes('gateway');
  // Wherever the gateway starts: never exposed with development defaults unless the operator said so.
  if (withGateway) {
    const exposure = enforceExposure(config);
    if (exposure.action === 'warn') log.warn(exposure.message, { host: config.gateway.host });
  }
  // The analysts' ClickHouse-compatible endpoint runs with the analytics role: refused before anything starts if unsafe.
  if (roles.includes('analytics')) enforceAnalyticsHttp(config);
  const runtime = await openRuntime(config, log, {
    natsUrl: options.natsUrl,
    databaseUrl: options.databaseUrl,
    name: config.nodeId === undefined ? 'parley' : `parley-${config.nodeId}`,
  });
  runtime.metrics.includeRuntimeSeries(roles.join(','));
  const stops: (() => Promise<void>)[] = [];
  const singles = new Map<Role, SingleActiveRole<Stoppable>>();
  try {
    const singleRoles = SINGLE_ACTIVE_ROLES.filter((r) => roles.includes(r));
    if (singleRoles.length > 0) {
      const leases = await RoleLeases.open(runtime.nats.js, runtime.nats.jsm, {
        namespace: config.namespace,
        replicas: config.nats.replicas,
        ttlMs: config.roleLeaseTtlMs,
        holder: `pid ${process.pid} on ${os.hostname()} (node ${runtime.nodeId})`,
        log: log.child({ component: 'role-lease' }),
      });
      for (const role of singleRoles) {
        const single = new SingleActiveRole<Stoppable>(role, leases.lease(role), (fence) => startSingle(role, runtime, fence), log.child({ role }));
        await single.start();
        singles.set(role, single);
        stops.push(() => single.stop());
      }
    }
    const service = <S>(role: Role) => singles.get(role)?.service as S | undefined;
    const roleStatus = () => [...singles.values()].map((s) => s.status());
    const healthChecks: Record<string, HealthCheck> = {
      roles: async () => describeRoles(roles, roleStatus()),
      // One `projector` check over every projection runner active here: the read model's and the notifier's.
      projector: async () => {
        const runners = [
          ...(service<ProjectorService>('projector')?.runners ?? []),
          ...(service<NotifierService>('notifier') ? [service<NotifierService>('notifier')!.runner] : []),
        ];
        if (runners.length === 0) return 'no projection active in this process';
        return projectorLagCheck(runners, config.projector.maxHealthyLag)();
      },
    };
    if (!singleRoles.includes('projector') && !singleRoles.includes('notifier')) delete healthChecks.projector;
    // Readiness follows the roles working here now: a standby's dependencies count once it takes over.
    const activeRoles = (): Role[] => [
      ...(withGateway ? (['gateway'] as const) : []),
      ...roleStatus()
        .filter((s) => s.state === 'active')
        .map((s) => s.role as Role),
    ];
    const readiness = () => requiredChecks(activeRoles());
    let gateway: GatewayService | undefined;
    let health: HealthServer | undefined;
    if (withGateway) {
      const auth = await createAuthenticator(config);
      const started = (gateway = await startGateway(runtime, { auth, healthChecks, requiredChecks: readiness }));
      stops.push(() => started.stop());
    } else {
      const started = (health = await startHealthServer(runtime, healthChecks, readiness));
      stops.push(() => started.stop());
    }
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
      else void stop().catch((err) => log.error('stopping after the node id was lost failed', { err }));
    });
    log.info('roles started', { roles, ...Object.fromEntries(roleStatus().map((s) => [s.role, s.state])) });
    return {
      runtime,
      roles,
      ...(gateway ? { gateway } : {}),
      ...(health ? { health } : {}),
      get projector() {
        return service<ProjectorService>('projector');
      },
      get analytics() {
        return service<AnalyticsService>('analytics');
      },
      get notifier() {
        return service<NotifierService>('notifier');
      },
      roleStatus,
      stop,
    };
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await runtime.close().catch(() => undefined);
    throw err;
  }
}

/** Starts one single-active role's service; `fence` refuses its commits once the role's lease is gone. */
async function startSingle(role: Role, runtime: Runtime, fence: () => void): Promise<Stoppable> {
  switch (role) {
    case 'projector':
      return startProjector(runtime, { fence });
    case 'membership': {
      const membership = new MembershipReactor(runtime, fence);
      await membership.start();
      return membership;
    }
    case 'analytics':
      return startAnalytics(runtime, { projector: { fence } });
    case 'notifier':
      return startNotifier(runtime, { fence });
    default:
      throw new Error(`${role} is not a single-active role`);
  }
}

/** The `roles` health detail, e.g. `gateway; projector active; analytics standby (held by pid 12 on db1 (node 3))`. */
function describeRoles(roles: Role[], statuses: RoleStatus[]): string {
  const parts: string[] = roles.includes('gateway') ? ['gateway'] : [];
  for (const s of statuses) parts.push(s.state === 'standby' ? `standby for ${s.role}, held by ${s.holder ?? 'another process'}` : `${s.role} ${s.state}`);
  return parts.join('; ');
}
