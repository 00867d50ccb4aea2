/**
 * Notices a delivery of the durable consumer that never reached this runner.
 *
 * The checkpoint is a high-water mark, so it is only right while every event
 * below it was applied. JetStream numbers every delivery of a consumer (the
 * consumer sequence, redeliveries included); one runner pulling alone sees
 * them without a hole. A hole means a delivery went elsewhere: a stale pull of
 * a holder that lost its lease (its pull request outlives its session on the
 * server), or a message lost in transit while a route was cut. That event
 * comes back only after ack_wait, behind newer ones the runner has applied by
 * then, and would be skipped as "already covered". So a hole stops the session
 * and the consumer is recreated at the checkpoint, which is always safe:
 * projections are idempotent per event.
 */
export class DeliveryGap extends Error {
  constructor(
    readonly expected: number,
    readonly received: number,
    readonly seq: number,
  ) {
    super(`consumer delivery ${expected} never reached this runner (received delivery ${received}, stream sequence ${seq})`);
    this.name = 'DeliveryGap';
  }
}

export class DeliverySequence {
  /** @param last the consumer's delivered sequence when this session opened (0 for a new consumer). */
  constructor(private last: number) {}

  /** Throws DeliveryGap unless `delivery` directly follows the previous one. */
  next(delivery: number, seq: number): void {
    if (delivery !== this.last + 1) throw new DeliveryGap(this.last + 1, delivery, seq);
    this.last = delivery;
  }
}
