import { describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import type { RoleLease } from './role-lease.js';
import { LeaseLost, SingleActiveRole, type Fence } from './single-active.js';

/** A lease whose validity the test switches: `valid` false is a refresh that keeps failing (NATS cut off). */
function fakeLease() {
  const state = { valid: true };
  const lease = {
    ttlMs: 300,
    tryAcquire: async () => (state.valid ? { held: true } : { held: false, holder: 'this process (refresh failed)' }),
    refresh: async () => {
      if (!state.valid) throw new Error('jetstream is not enabled');
      return true;
    },
    held: () => state.valid,
    release: async () => undefined,
  };
  return { state, lease: lease as unknown as RoleLease };
}

/** A consumer that stops for good when its fence refuses a batch, as the projection runner does. */
class FakeService {
  stoppedItself = false;
  stopped = false;
  constructor(private readonly fence: Fence) {}
  applyBatch(): boolean {
    if (this.stoppedItself || this.stopped) return false;
    try {
      this.fence();
      return true;
    } catch (err) {
      if (err instanceof LeaseLost) this.stoppedItself = true;
      return false;
    }
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

const until = async (condition: () => boolean, ms = 3000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** A started role over `lease` whose every start makes a new FakeService, kept in `services` in order. */
async function startedRole(name: string, lease: RoleLease) {
  const services: FakeService[] = [];
  const role = new SingleActiveRole(name, lease, async (fence) => services[services.push(new FakeService(fence)) - 1]!, createLogger({ level: 'silent' }));
  await role.start();
  return { role, services };
}

describe('a single-active role whose fence refused a batch', () => {
  it('is restarted when its lease turns out to be still its own, instead of staying active with a stopped service', async () => {
    const { state, lease } = fakeLease();
    const { role, services } = await startedRole('notifier', lease);
    expect(role.state).toBe('active');
    expect(services[0]!.applyBatch()).toBe(true);

    // NATS unreachable for a while: the refresh fails past the lease's validity and a batch is refused.
    state.valid = false;
    expect(services[0]!.applyBatch()).toBe(false);
    expect(services[0]!.stoppedItself).toBe(true);
    // Back before anyone else took the key: the refresh finds the entry still ours.
    state.valid = true;

    await until(() => services.length === 2 && role.state === 'active');
    expect(services[0]!.stopped).toBe(true);
    expect(services[1]!.applyBatch()).toBe(true);
    await role.stop();
  });

  it('stays active with the same service while no batch was refused and refreshes succeed', async () => {
    const { lease } = fakeLease();
    const { role, services } = await startedRole('projector', lease);
    await new Promise((r) => setTimeout(r, 400));
    expect(services).toHaveLength(1);
    expect(role.state).toBe('active');
    await role.stop();
  });
});
