import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MembershipReactor } from '../services/membership/reactor.js';
import { ProjectionRunner } from '../services/projection/runner.js';
import { appendAll, created, sent, waitUntil } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

/**
 * The workers' consumers ack cumulatively (issue 16: an ack per event was a
 * message for nats-server per event and consumer), and replace a consumer an
 * earlier version made with per-event acks (or a filter) where it stood. The
 * platform runs without its own workers, so this file owns the consumers.
 */
let p: TestPlatform;
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  p = await startTestPlatform({ withWorkers: false });
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await p?.stop();
});

/** Counts the acks sent for a consumer's deliveries (they are published to `$JS.ACK.<stream>.<consumer>.…`). */
async function countAcks(stream: string, consumer: string): Promise<{ count: () => number; sub: Subscription }> {
  let n = 0;
  const sub = p.platform.runtime.nats.nc.subscribe(`$JS.ACK.${stream}.${consumer}.>`, { callback: () => void n++ });
  stops.push(async () => sub.unsubscribe());
  // The subscription is in place on the server before anything is acked.
  await p.platform.runtime.nats.nc.flush();
  return { count: () => n, sub };
}

describe('the projection runner', () => {
  it('replaces a consumer with per-event acks at its checkpoint, and acks each batch once', async () => {
    const rt = p.platform.runtime;
    const stream = rt.shards[0]!.stream;
    const applied: number[] = [];
    const runner = new ProjectionRunner(rt, {
      name: 'ack-probe',
      filterSubjects: [rt.subjects.allEvents],
      apply: async (_trx, batch) => void applied.push(...batch.map((e) => e.seq)),
    });
    // What an earlier version left: the same durable, acking one by one.
    await rt.nats.jsm.consumers.add(stream, { durable_name: runner.consumerName, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    const seqs = await appendAll(rt, [
      created('g_acks', ['ann', 'ben']),
      ...Array.from({ length: 40 }, (_, i) => sent('g_acks', i % 2 ? 'ann' : 'ben', `m${i}`)),
    ]);
    const acks = await countAcks(stream, runner.consumerName);
    await runner.start();
    stops.push(() => runner.stop());
    const last = seqs[seqs.length - 1]!;
    await waitUntil(() => runner.checkpoint >= last, 10_000, 'the runner to apply every event');
    await waitUntil(async () => (await runner.lag()) === 0, 10_000, 'every event acked');

    const info = await rt.nats.jsm.consumers.info(stream, runner.consumerName);
    expect(info.config.ack_policy).toBe(AckPolicy.All);
    expect(info.ack_floor.stream_seq).toBeGreaterThanOrEqual(last);
    expect(applied.filter((s) => seqs.includes(s))).toEqual(seqs);
    // One ack per batch: far fewer than the 41 events (they arrive in a few pulls at most).
    expect(acks.count()).toBeGreaterThan(0);
    expect(acks.count()).toBeLessThan(seqs.length / 4);
  });
});

describe('the membership reactor', () => {
  it('replaces a filtered consumer with per-event acks after its ack floor, reads unfiltered and acks cumulatively', async () => {
    const rt = p.platform.runtime;
    const stream = rt.shards[0]!.stream;
    const reactor = new MembershipReactor(rt);
    await rt.nats.jsm.consumers.add(stream, {
      durable_name: reactor.consumerName,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${rt.subjects.namespace}.ev.conv.*`,
    });
    const acks = await countAcks(stream, reactor.consumerName);
    await reactor.start();
    stops.push(() => reactor.stop());
    const seqs = await appendAll(rt, [
      created('g_members', ['cat', 'dov']),
      ...Array.from({ length: 40 }, (_, i) => sent('g_members', i % 2 ? 'cat' : 'dov', `m${i}`)),
    ]);
    // The creation reached both members' subjects.
    for (const user of ['cat', 'dov']) {
      await waitUntil(
        async () => {
          for await (const e of rt.store.readSubject(rt.subjects.user(user), 0)) if (e.event.type === 'membership.joined') return true;
          return false;
        },
        10_000,
        `${user} to join`,
      );
    }
    const last = seqs[seqs.length - 1]!;
    await waitUntil(
      async () => {
        const info = await rt.nats.jsm.consumers.info(stream, reactor.consumerName);
        return info.num_ack_pending === 0 && info.ack_floor.stream_seq >= last;
      },
      10_000,
      'every event acked',
    );
    const info = await rt.nats.jsm.consumers.info(stream, reactor.consumerName);
    expect(info.config.ack_policy).toBe(AckPolicy.All);
    expect(info.config.filter_subject ?? '').toBe('');
    expect(info.config.filter_subjects ?? []).toEqual([]);
    expect(acks.count()).toBeGreaterThan(0);
    expect(acks.count()).toBeLessThan(seqs.length / 4);
  });
});
