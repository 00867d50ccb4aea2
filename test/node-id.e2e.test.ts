import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startPlatform, type Platform } from '../ops/platform.js';
import { isAppError } from '../services/runtime/errors.js';
import { loadConfig } from '../services/runtime/config.js';
import { createLogger } from '../services/observability/logger.js';
import { connectNats, type NatsHandles } from '../services/event-log/connection.js';
import { nodeIdBucket, NodeIdLease } from '../services/leases/node-id-lease.js';
import { NatsSetupRefused } from '../services/event-log/refusal.js';
import { startTestPlatform, TEST_JWT_SECRET, uniqueNamespace } from './support/platform.js';

/**
 * Node ids are leased in NATS KV (services/leases/node-id-lease.ts): no
 * two running processes of one namespace mint ids with the same node id.
 * Real nats-server; leases with a short TTL stand in for "killed" holders
 * (a holder that stops refreshing is exactly what a killed process is).
 */
const quiet = createLogger({ level: 'silent' });
let nats: NatsHandles;

beforeAll(async () => {
  nats = await connectNats(inject('natsUrl'), 'node-id-test', quiet);
});
afterAll(async () => {
  await nats.nc.drain();
});

const acquire = (namespace: string, requested: number | undefined, extra: { ttlMs?: number; refreshMs?: number } = {}) =>
  NodeIdLease.acquire(nats.js, nats.jsm, { namespace, requested, replicas: 1, log: quiet, ...extra });

/** JetStream removes an expired entry up to about a second after its max age: try until then. */
async function acquireOnceFree(namespace: string, id: number, ttlMs: number): Promise<NodeIdLease> {
  const deadline = Date.now() + ttlMs + 5000;
  for (;;) {
    try {
      return await acquire(namespace, id, { ttlMs });
    } catch (err) {
      if (!(err instanceof NatsSetupRefused) || Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

describe('node id leases', () => {
  it('refuses a second holder of an explicit id, with a one-line reason, until the first releases it', async () => {
    const ns = uniqueNamespace('nid');
    const first = await acquire(ns, 7);
    expect(first.nodeId).toBe(7);
    const refused = await acquire(ns, 7).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(NatsSetupRefused);
    expect((refused as Error).message).toMatch(/^NODE_ID=7 is in use by pid \d+ on .+; give this process another NODE_ID \(0\.\.1023\)/);
    expect((refused as Error).message).not.toContain('\n');
    await first.release();
    const second = await acquire(ns, 7);
    expect(second.nodeId).toBe(7);
    await second.release();
  });

  it('gives processes without an explicit id distinct ids, skipping explicit ones', async () => {
    const ns = uniqueNamespace('nid');
    const explicit = await acquire(ns, 0);
    const auto = await Promise.all(Array.from({ length: 6 }, () => acquire(ns, undefined)));
    const ids = auto.map((l) => l.nodeId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).not.toContain(0);
    for (const id of ids) expect(id).toBeGreaterThanOrEqual(1);
    await Promise.all([explicit, ...auto].map((l) => l.release()));
  });

  it('frees the id of a holder that stopped refreshing once the TTL passes; that holder stops minting and learns it lost the id', async () => {
    const ns = uniqueNamespace('nid');
    const ttlMs = 1500;
    // The "killed" holder: never refreshes on its own.
    const dead = await acquire(ns, 3, { ttlMs, refreshMs: 3_600_000 });
    const lost: string[] = [];
    dead.onLost((reason) => lost.push(reason));
    expect(() => dead.assertHeld()).not.toThrow();
    await expect(acquire(ns, 3, { ttlMs })).rejects.toBeInstanceOf(NatsSetupRefused);

    await sleep(ttlMs + 300);
    // Past its validity, the old holder refuses to mint even before it hears of anyone else.
    const stale = (() => {
      try {
        dead.assertHeld();
        return null;
      } catch (e) {
        return e;
      }
    })();
    expect(isAppError(stale, 'unavailable')).toBe(true);

    const next = await acquireOnceFree(ns, 3, ttlMs);
    expect(next.nodeId).toBe(3);
    // The old holder wakes up and refreshes: the id is someone else's now.
    await dead.refresh();
    expect(dead.status).toBe('lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatch(/node id 3 is now held by pid/);
    expect(() => dead.assertHeld()).toThrow(/taken by another process/);
    // ...and its release does not delete the new holder's key.
    await dead.release();
    expect(() => next.assertHeld()).not.toThrow();
    await next.refresh();
    expect(next.status).toBe('held');
    await next.release();
  });

  it('keeps a lease that is refreshed alive well past its TTL', async () => {
    const ns = uniqueNamespace('nid');
    const lease = await acquire(ns, 9, { ttlMs: 1200 });
    await sleep(2500);
    expect(lease.status).toBe('held');
    await expect(acquire(ns, 9, { ttlMs: 1200 })).rejects.toBeInstanceOf(NatsSetupRefused);
    await lease.release();
  });

  it('takes a lapsed id back when nobody else took it meanwhile (a process frozen for a while)', async () => {
    const ns = uniqueNamespace('nid');
    const lease = await acquire(ns, 4, { ttlMs: 1000, refreshMs: 3_600_000 });
    await sleep(1000);
    expect(lease.status).toBe('stale');
    const kv = await new Kvm(nats.js).open(nodeIdBucket(ns));
    for (let i = 0; i < 100 && (await kv.get('4')) !== null; i++) await sleep(100);
    expect(await kv.get('4')).toBeNull();
    await lease.refresh();
    expect(lease.status).toBe('held');
    expect(() => lease.assertHeld()).not.toThrow();
    await expect(acquire(ns, 4, { ttlMs: 1000 })).rejects.toBeInstanceOf(NatsSetupRefused);
    await lease.release();
  });
});

describe('node ids of running platforms', () => {
  const platforms: Platform[] = [];
  afterAll(async () => {
    for (const p of platforms) await p.stop().catch(() => undefined);
  });

  /** Shares the test platforms' data dir: chDB takes one per process. */
  async function platformWithoutNodeId(namespace: string, databaseUrl: string, dataDir: string): Promise<Platform> {
    const config = loadConfig({
      PARLEY_NAMESPACE: namespace,
      PARLEY_DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      AUTH_JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'silent',
    });
    expect(config.nodeId).toBeUndefined();
    const p = await startPlatform(config, quiet, { natsUrl: inject('natsUrl'), databaseUrl, withWorkers: false });
    platforms.push(p);
    return p;
  }

  it('a second platform with the same NODE_ID refuses to start; two without one get different ids and mint with them', async () => {
    const first = await startTestPlatform({ nodeId: 5 });
    platforms.push(first.platform);
    expect(first.platform.runtime.nodeId).toBe(5);
    const refused = await startTestPlatform({ namespace: first.namespace, databaseUrl: first.databaseUrl, withWorkers: false, nodeId: 5 }).catch(
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(NatsSetupRefused);
    expect((refused as Error).message).toMatch(/^NODE_ID=5 is in use/);

    const a = await platformWithoutNodeId(first.namespace, first.databaseUrl, first.config.dataDir);
    const b = await platformWithoutNodeId(first.namespace, first.databaseUrl, first.config.dataDir);
    expect(new Set([5, a.runtime.nodeId, b.runtime.nodeId]).size).toBe(3);
    expect(a.runtime.config.nodeId).toBe(a.runtime.nodeId);
    const { parseSnowflake } = await import('../services/ids/snowflake.js');
    expect(parseSnowflake(a.runtime.ids.next()).nodeId).toBe(a.runtime.nodeId);
  });

  it('a platform whose id another process took stops minting and stops its services', async () => {
    const started = await startTestPlatform({ nodeId: 11, withWorkers: false });
    const { namespace, platform: p, http } = started;
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    platforms.push(p);
    // Another process holds key 11 now (as after a lapse while this one was frozen).
    const kv = await new Kvm(nats.js).open(nodeIdBucket(namespace));
    await kv.delete('11');
    await kv.create('11', JSON.stringify({ token: 'other', holder: 'pid 1 on elsewhere', since: new Date().toISOString() }));
    await p.runtime.nodeIdLease.refresh();
    expect(() => p.runtime.ids.next()).toThrow(/taken by another process/);
    // Fail-stop: the platform stops (its listener closes, its NATS connection drains), so no new command reaches it.
    for (let i = 0; i < 100 && !p.runtime.nats.nc.isClosed(); i++) await sleep(50);
    expect(p.runtime.nats.nc.isClosed()).toBe(true);
    const refusedConnection = await new Promise<string>((resolve) => {
      const socket = net.connect(p.gateway.port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve('connected')));
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refusedConnection).toBe('ECONNREFUSED');
    // The other holder's key is untouched by the stop.
    expect((await kv.get('11'))?.json<{ token: string }>().token).toBe('other');
  });
});
