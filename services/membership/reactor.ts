import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { UserEvent } from '../../contracts/index.js';
import type { Logger } from '../shared/logger.js';
import { decodeEvent } from '../shared/nats/event-store.js';
import type { Runtime } from '../shared/runtime.js';

/**
 * Turns membership changes recorded on a conversation's subject into events
 * on each affected user's subject, so every device of a user learns about
 * conversations it joined or left from its own subject. Each derived event
 * carries a Nats-Msg-Id made of the conversation event's sequence and the
 * user, so a redelivery within the dedup window appends nothing twice; the
 * membership events are idempotent for their readers beyond it.
 */
export class MembershipReactor {
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private readonly log: Logger;

  constructor(private readonly runtime: Runtime) {
    this.log = runtime.log.child({ service: 'membership' });
  }

  get consumerName(): string {
    return `${this.runtime.subjects.namespace}-membership`;
  }

  async start(): Promise<void> {
    const { jsm, js } = this.runtime.nats;
    const shard = this.runtime.shards[0]!;
    try {
      await jsm.consumers.info(shard.stream, this.consumerName);
    } catch {
      await jsm.consumers.add(shard.stream, {
        durable_name: this.consumerName,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: `${this.runtime.subjects.namespace}.ev.conv.*`,
        max_ack_pending: 1000,
        ack_wait: 30_000_000_000,
      });
    }
    const consumer = await js.consumers.get(shard.stream, this.consumerName);
    this.messages = await consumer.consume({ max_messages: 500 });
    this.loop = this.run(this.messages);
  }

  async stop(): Promise<void> {
    await this.messages?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const msg of messages) {
      try {
        await this.react(msg);
        msg.ack();
      } catch (err) {
        this.log.error('membership reaction failed, will retry', { seq: msg.seq, err });
        msg.nak(1000);
      }
    }
  }

  private async react(msg: JsMsg): Promise<void> {
    let event;
    try {
      event = decodeEvent(msg.data);
    } catch (err) {
      this.log.error('undecodable event skipped', { seq: msg.seq, err });
      return;
    }
    if (event.type !== 'conversation.created') return;
    const { conversationId, kind, members } = event.data;
    const cause = { conversationSeq: msg.seq };
    await Promise.all(
      members.map((m) => {
        const derived: UserEvent = {
          type: 'membership.joined',
          v: 1,
          at: event.at,
          actor: event.actor,
          data: { conversationId, kind, role: m.role, cause },
        };
        return this.runtime.store.append(this.runtime.subjects.user(m.userId), derived, { msgId: `mj:${msg.seq}:${m.userId}` });
      }),
    );
  }
}
