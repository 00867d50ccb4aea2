import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { DeliveryTiming, subjectsFor } from '../../../contracts/index.js';
import { DELIVERY_BATCH_MAX, deliveryTimingReporter } from './delivery-timing.js';

function fakeNats() {
  const published: { subject: string; data: string }[] = [];
  const nc = { isClosed: () => false, publish: (subject: string, data: string) => published.push({ subject, data }) };
  return { nc: nc as unknown as NatsConnection, published };
}

const sentEvent = (at: number) => `{"type":"message.sent","at":${at},"data":{"text":"\\"type\\":\\"message.sent\\",\\"at\\":1"}}`;

describe('delivery timing reporter', () => {
  it('holds records and publishes them as one JSON array of DeliveryTiming per batch', () => {
    const { nc, published } = fakeNats();
    const subjects = subjectsFor('t');
    const seen: number[] = [];
    const reporter = deliveryTimingReporter(
      nc,
      subjects,
      () => 3,
      (s) => seen.push(s),
    );
    reporter.observer('conv', 'g_1', 7, sentEvent(1000));
    reporter.observer('conv', 'g_1', 8, '{"type":"message.edited","at":1001}');
    reporter.observer('user', 'ann', 9, sentEvent(1002));
    reporter.observer('conv', 'g_2', 10, sentEvent(1003));
    expect(published).toEqual([]);
    reporter.flush();
    expect(published).toHaveLength(1);
    expect(published[0]!.subject).toBe(subjects.metricsDelivery());
    const records = (JSON.parse(published[0]!.data) as unknown[]).map((r) => DeliveryTiming.parse(r));
    expect(records.map((r) => [r.seq, r.conversationId, r.at, r.recipients])).toEqual([
      [7, 'g_1', 1000, 3],
      [10, 'g_2', 1003, 3],
    ]);
    expect(seen).toHaveLength(2);
    reporter.flush();
    expect(published).toHaveLength(1);
  });

  it('publishes a full batch at once', () => {
    const { nc, published } = fakeNats();
    const reporter = deliveryTimingReporter(nc, subjectsFor('t'), () => 1);
    for (let seq = 1; seq <= DELIVERY_BATCH_MAX + 1; seq++) reporter.observer('conv', 'g_1', seq, sentEvent(1000));
    expect(published).toHaveLength(1);
    expect(JSON.parse(published[0]!.data)).toHaveLength(DELIVERY_BATCH_MAX);
    reporter.flush();
    expect(published.map((p) => (JSON.parse(p.data) as unknown[]).length)).toEqual([DELIVERY_BATCH_MAX, 1]);
  });
});
