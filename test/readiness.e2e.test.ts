import { createClient } from '@clickhouse/client';
import { afterAll, describe, expect, it, inject } from 'vitest';
import { pickFreePort } from '../ops/embedded/free-port.js';
import { startRoles, type RoleProcess } from '../ops/platform.js';
import { loadConfig } from '../services/runtime/config.js';
import { createDb } from '../services/read-store/connect.js';
import { createLogger } from '../services/observability/logger.js';
import type { Runtime } from '../services/runtime/runtime.js';
import { createDatabase, startTestPlatform, TEST_JWT_SECRET, uniqueNamespace, type TestPlatform } from './support/platform.js';
import { api } from './support/ws-client.js';

/**
 * /healthz answers 503 when any check fails; /readyz only when a dependency
 * of the roles active in this process is down (docs/operations.md, "Health
 * and readiness"). A ClickHouse outage must leave every gateway in the load
 * balancer, while /healthz's body still shows it down.
 */
const started: { stop(): Promise<void> }[] = [];
afterAll(async () => {
  for (const s of started.reverse()) await s.stop();
});

/** Points one of the runtime's clients at a closed loopback port (a real client failing for real), until restored. */
async function breakDependency(runtime: Runtime, which: 'clickhouse' | 'postgres'): Promise<() => Promise<void>> {
  const closed = `127.0.0.1:${await pickFreePort()}`;
  if (which === 'clickhouse') {
    const original = runtime.clickhouse;
    const broken = createClient({ url: `http://${closed}`, request_timeout: 1000 });
    runtime.clickhouse = broken;
    return async () => {
      runtime.clickhouse = original;
      await broken.close();
    };
  }
  const original = runtime.db;
  const broken = createDb(`postgres://parley:x@${closed}/parley`, createLogger({ level: 'silent' }), { max: 1 });
  runtime.db = broken;
  return async () => {
    runtime.db = original;
    await broken.destroy();
  };
}

let gatewayOnly: TestPlatform;
let everything: TestPlatform;
let membershipOnly: RoleProcess;

async function startMembershipOnly(): Promise<RoleProcess> {
  const namespace = uniqueNamespace('rz');
  const databaseUrl = await createDatabase(namespace);
  const config = loadConfig({
    PARLEY_NAMESPACE: namespace,
    HOST: '127.0.0.1',
    PORT: '0',
    NODE_ID: '3',
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'warn',
    PARLEY_DATA_DIR: gatewayOnly.config.dataDir,
  });
  return startRoles(config, createLogger({ level: 'silent' }), { natsUrl: inject('natsUrl'), databaseUrl, roles: ['membership'] });
}

const cases = [
  {
    name: 'a gateway',
    process: () => gatewayOnly.http,
    runtime: () => gatewayOnly.platform.runtime,
    broken: 'clickhouse',
    ready: true,
    required: ['nats', 'postgres'],
  },
  {
    name: 'a gateway',
    process: () => gatewayOnly.http,
    runtime: () => gatewayOnly.platform.runtime,
    broken: 'postgres',
    ready: false,
    required: ['nats', 'postgres'],
  },
  {
    name: 'a process with every role (its analytics active)',
    process: () => everything.http,
    runtime: () => everything.platform.runtime,
    broken: 'clickhouse',
    ready: false,
    required: ['nats', 'postgres', 'clickhouse'],
  },
  {
    name: 'a membership worker',
    process: () => `http://127.0.0.1:${membershipOnly.health!.port}`,
    runtime: () => membershipOnly.runtime,
    broken: 'clickhouse',
    ready: true,
    required: ['nats'],
  },
  {
    name: 'a membership worker',
    process: () => `http://127.0.0.1:${membershipOnly.health!.port}`,
    runtime: () => membershipOnly.runtime,
    broken: 'postgres',
    ready: true,
    required: ['nats'],
  },
] as const;

describe('readiness per role', () => {
  it('starts a gateway, a process with every role and a membership worker', async () => {
    gatewayOnly = await startTestPlatform({ withWorkers: false, nodeId: 1 });
    started.push(gatewayOnly);
    everything = await startTestPlatform({ nodeId: 2 });
    started.push(everything);
    membershipOnly = await startMembershipOnly();
    started.push(membershipOnly);
  }, 60_000);

  it.each(cases)(
    '$name with $broken down: /readyz ready=$ready, /healthz 503 with $broken down in its body',
    async ({ process, runtime, broken, ready, required }) => {
      const base = process();
      const before = await api(base, 'GET', '/readyz');
      expect(before.status).toBe(200);
      expect(before.body).toMatchObject({ ready: true, required });

      const restore = await breakDependency(runtime(), broken);
      try {
        for (const path of ['/readyz', '/healthz']) {
          const r = await api(base, 'GET', path);
          // The same body on both: every check with its state.
          expect(r.body.checks[broken]).toMatchObject({ ok: false });
          expect(r.body).toMatchObject({ status: 'down', down: [broken], ready, required });
          expect(r.status).toBe(path === '/healthz' || !ready ? 503 : 200);
        }
      } finally {
        await restore();
      }
      expect((await api(base, 'GET', '/healthz')).status).toBe(200);
    },
  );
});
