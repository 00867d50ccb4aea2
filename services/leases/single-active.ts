import type { Logger } from '../observability/logger.js';
import type { RoleLease } from './role-lease.js';

/** Thrown by a fence whose lease is no longer held: the work in hand must not be committed. */
export class LeaseLost extends Error {
  override readonly name = 'LeaseLost';
  constructor(role: string) {
    super(`the ${role} lease is no longer held by this process`);
  }
}

/** Called by a single-active service before it commits a batch: throws LeaseLost once the lease is not held. */
export type Fence = () => void;

export interface Stoppable {
  stop(): Promise<void>;
}

export type RoleState = 'starting' | 'active' | 'standby' | 'stopped';

export interface RoleStatus {
  role: string;
  state: RoleState;
  /** Who holds the lease, while this process stands by. */
  holder?: string;
}

/**
 * Runs one single-active role (services/runtime/roles.ts) in this process
 * only while it holds the role's lease (nats/role-lease.ts):
 *
 * - standby: tries to take the lease every TTL/3; once it has it, starts the
 *   service (which resumes from its checkpoint).
 * - active: refreshes the lease every TTL/3. When the lease is lost (another
 *   process holds it, or it could not be refreshed for its TTL) the service
 *   is stopped and the role stands by again. Until then the service's fence
 *   refuses every batch once the lease is not held, so a holder cut off from
 *   NATS stops committing before anyone else can take over.
 *
 * A standby therefore takes over between TTL and TTL + TTL/3 after the active
 * instance stopped refreshing (killed, frozen, partitioned), and at its next
 * attempt (within TTL/3) after a clean stop, which releases the lease.
 */
export class SingleActiveRole<S extends Stoppable> {
  private stateValue: RoleState = 'starting';
  private holder: string | undefined;
  private current: S | undefined;
  private timer: NodeJS.Timeout | null = null;
  /** Set by stop(): no more ticks, while the active service finishes under its lease. */
  private stopping = false;
  private ticking: Promise<void> = Promise.resolve();
  private readonly periodMs: number;
  /**
   * Set when the fence refused a batch. A service told LeaseLost stops consuming for good, while the lease
   * may well come back (a refresh that failed for a while, then found the entry still ours): the role must
   * then be restarted, not left active with a stopped service.
   */
  private fenceTripped = false;

  constructor(
    readonly role: string,
    private readonly lease: RoleLease,
    private readonly startService: (fence: Fence) => Promise<S>,
    private readonly log: Logger,
  ) {
    this.periodMs = Math.max(100, Math.floor(lease.ttlMs / 3));
  }

  get state(): RoleState {
    return this.stateValue;
  }

  /** The running service while active. */
  get service(): S | undefined {
    return this.current;
  }

  status(): RoleStatus {
    return { role: this.role, state: this.stateValue, ...(this.stateValue === 'standby' && this.holder ? { holder: this.holder } : {}) };
  }

  /**
   * First attempt, awaited: active (service started) or standby when it
   * returns. A service that fails to start here fails the process's start.
   */
  async start(): Promise<void> {
    const acquired = await this.lease.tryAcquire();
    if (acquired.held) {
      if (acquired.reclaimedFrom)
        this.log.info(`took the ${this.role} lease of a process that is gone`, { role: this.role, previousHolder: acquired.reclaimedFrom });
      try {
        await this.activate();
      } catch (err) {
        await this.lease.release();
        this.stateValue = 'stopped';
        throw err;
      }
    } else this.standBy(acquired.holder);
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.stateValue === 'stopped' || this.stopping) return;
    // No further ticks; the role stays active (its fence passes) while the service finishes its last work, so a
    // clean stop flushes under the lease instead of leaving that work to the next holder.
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.ticking;
    await this.deactivate();
    this.stateValue = 'stopped';
    await this.lease.release();
  }

  private fence: Fence = () => {
    if (!this.lease.held() || this.stateValue !== 'active') {
      this.fenceTripped = true;
      throw new LeaseLost(this.role);
    }
  };

  private schedule(): void {
    if (this.stateValue === 'stopped' || this.stopping) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => this.schedule());
    }, this.periodMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      if (this.stateValue === 'active') {
        const still = await this.lease.refresh().catch((err: unknown) => {
          // Unreachable: the lease stays valid until its TTL runs out; the fence checks that by itself.
          this.log.warn('role lease refresh failed; retrying', { role: this.role, err: String(err) });
          return this.lease.held();
        });
        if (!still || !this.lease.held() || this.fenceTripped) {
          // Standing by after a tripped fence, though the lease may be ours again: the next attempt takes it
          // (the entry is still ours) and starts the service afresh from its checkpoint.
          this.log.error(`lost the ${this.role} lease; stopping the ${this.role} role and standing by`, {
            role: this.role,
            ...(still && this.lease.held() ? { reason: 'a batch was refused while the lease could not be refreshed' } : {}),
          });
          await this.deactivate();
          this.stateValue = 'standby';
          this.holder = 'unknown (lease lost)';
        }
        return;
      }
      if (this.stateValue !== 'standby') return;
      const acquired = await this.lease.tryAcquire();
      if (this.stateValue !== 'standby') return; // stopped meanwhile
      if (!acquired.held) return this.standBy(acquired.holder);
      if (acquired.reclaimedFrom)
        this.log.info(`took the ${this.role} lease of a process that is gone`, { role: this.role, previousHolder: acquired.reclaimedFrom });
      this.log.info(`took over the ${this.role} role`, { role: this.role, previousHolder: acquired.reclaimedFrom ?? this.holder });
      await this.activate().catch(async (err: unknown) => {
        this.log.error(`cannot start the ${this.role} role; releasing its lease and standing by`, { role: this.role, err });
        await this.deactivate();
        await this.lease.release();
        this.stateValue = 'standby';
      });
    } catch (err) {
      this.log.warn('role lease attempt failed; retrying', { role: this.role, err: String(err) });
    }
  }

  private async activate(): Promise<void> {
    this.fenceTripped = false;
    this.stateValue = 'active';
    this.holder = undefined;
    this.current = await this.startService(this.fence);
    this.log.info(`active for ${this.role}`, { role: this.role });
  }

  private async deactivate(): Promise<void> {
    const service = this.current;
    this.current = undefined;
    await service?.stop().catch((err: unknown) => this.log.error(`stopping the ${this.role} role failed`, { role: this.role, err }));
  }

  private standBy(holder: string): void {
    // Logged when it starts waiting and when the holder changes, not at every attempt.
    if (this.stateValue !== 'standby' || this.holder !== holder) this.log.info(`standby for ${this.role}, held by ${holder}`, { role: this.role, holder });
    this.stateValue = 'standby';
    this.holder = holder;
  }
}
