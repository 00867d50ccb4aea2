import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { parseEntitySubject, type ConversationEvent, type UserEvent } from '../../contracts/index.js';
import type { Logger } from '../observability/logger.js';
import { decodeEventOfTypes } from '../event-log/event-store.js';
import { foldConversation } from '../commands/fold-conversation.js';
import { receivedNotYielded } from '../projection/runner.js';

/**
 * The conversation events that change who is in it, and tombstones (which may
 * take such a change back); every other event (most are messages) is skipped
 * unvalidated.
 */
const MEMBERSHIP_CHANGES = new Set(['conversation.created', 'members.added', 'member.removed', 'log.tombstoned'] as const);
const CHANGES_OF_MEMBERS: ReadonlySet<string> = new Set(['conversation.created', 'members.added', 'member.removed']);
import type { Runtime } from '../runtime/runtime.js';
import type { Fence } from '../leases/single-active.js';

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

  constructor(
    private readonly runtime: Runtime,
    /** Checked before each event is reacted to: throws once this process no longer holds the `membership` lease. */
    private readonly fence: Fence = () => undefined,
  ) {
    this.log = runtime.log.child({ service: 'membership' });
  }

  get consumerName(): string {
    return `${this.runtime.subjects.namespace}-membership`;
  }

  async start(): Promise<void> {
    const { jsm, js } = this.runtime.nats;
    const shard = this.runtime.shards[0]!;
    const info = await jsm.consumers.info(shard.stream, this.consumerName).catch(() => null);
    // Deliveries a stopped or killed holder left unacked would come back only after ack_wait, behind newer
    // events: start again after the ack floor instead (reactions are idempotent through their msg ids).
    const resumeAt = info && info.num_ack_pending > 0 ? info.ack_floor.stream_seq + 1 : null;
    if (resumeAt !== null) {
      this.log.info('repositioning the membership consumer after its ack floor', { from: resumeAt, unacknowledged: info!.num_ack_pending });
      await jsm.consumers.delete(shard.stream, this.consumerName).catch(() => undefined);
    }
    if (!info || resumeAt !== null) {
      await jsm.consumers.add(shard.stream, {
        durable_name: this.consumerName,
        ack_policy: AckPolicy.Explicit,
        ...(resumeAt !== null ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: resumeAt } : { deliver_policy: DeliverPolicy.All }),
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
    let handled: JsMsg[] = [];
    for await (const msg of messages) {
      try {
        this.fence();
      } catch (err) {
        // Fenced: left unacked for the new holder; this reactor waits to be stopped.
        this.log.warn('membership lease lost; reacting to nothing further', { seq: msg.seq, err: String(err) });
        for (const m of handled) m.ack();
        return;
      }
      try {
        await this.react(msg);
        handled.push(msg);
      } catch (err) {
        this.log.error('membership reaction failed, will retry', { seq: msg.seq, err });
        msg.nak(1000);
      }
      // Acks of what was received together go out together, in one write instead of one per event.
      if (receivedNotYielded(messages) === 0 || handled.length >= 256) {
        for (const m of handled) m.ack();
        handled = [];
      }
    }
  }

  /** The conversation's kind, from its first event (the creation). */
  private async kindOf(conversationId: string): Promise<'direct' | 'group' | 'channel' | null> {
    for await (const stored of this.runtime.store.readSubject(this.runtime.subjects.conv(conversationId), 0)) {
      return stored.event.type === 'conversation.created' ? stored.event.data.kind : null;
    }
    return null;
  }

  /**
   * A tombstone naming a membership change this reactor already turned into
   * user events: the affected users get the membership the write side now
   * sees (folded without the tombstoned event), so their subjects agree with
   * the conversation's again. Unreadable events were never reacted to.
   */
  private async afterTombstone(
    subject: string,
    targetSeq: number,
    cause: { conversationSeq: number },
    base: { v: 1; at: number; actor: string },
  ): Promise<{ userId: string; event: UserEvent }[]> {
    const entity = parseEntitySubject(subject);
    const target = entity?.kind === 'conv' ? await this.runtime.store.get(targetSeq) : null;
    if (!entity || !target || target.subject !== subject || !CHANGES_OF_MEMBERS.has(target.event.type)) return [];
    const e = target.event as ConversationEvent;
    const users =
      e.type === 'member.removed'
        ? [e.data.userId]
        : e.type === 'conversation.created' || e.type === 'members.added'
          ? e.data.members.map((m) => m.userId)
          : [];
    const state = await foldConversation(this.runtime.store, this.runtime.subjects, entity.id);
    this.log.info("membership change tombstoned: re-deriving the affected users' membership", { conversationId: entity.id, targetSeq, users: users.length });
    return users.map((userId) => {
      const role = state.members.get(userId);
      const data = { conversationId: entity.id, cause };
      const event: UserEvent = role
        ? { type: 'membership.joined', ...base, data: { ...data, kind: state.kind ?? 'group', role } }
        : { type: 'membership.left', ...base, data };
      return { userId, event };
    });
  }

  private async react(msg: JsMsg): Promise<void> {
    let event;
    try {
      event = decodeEventOfTypes(msg.data, MEMBERSHIP_CHANGES);
      if (!event) return;
    } catch (err) {
      this.log.error('undecodable event skipped', { seq: msg.seq, err });
      return;
    }
    const cause = { conversationSeq: msg.seq };
    const base = { v: 1 as const, at: event.at, actor: event.actor };
    let derived: { userId: string; event: UserEvent }[] = [];
    switch (event.type) {
      case 'conversation.created':
      case 'members.added': {
        const { conversationId } = event.data;
        const kind = event.type === 'conversation.created' ? event.data.kind : ((await this.kindOf(conversationId)) ?? 'group');
        derived = event.data.members.map((m) => ({
          userId: m.userId,
          event: { type: 'membership.joined', ...base, data: { conversationId, kind, role: m.role, cause } },
        }));
        break;
      }
      case 'member.removed':
        derived = [{ userId: event.data.userId, event: { type: 'membership.left', ...base, data: { conversationId: event.data.conversationId, cause } } }];
        break;
      case 'log.tombstoned':
        derived = await this.afterTombstone(msg.subject, event.data.seq, cause, base);
        break;
      default:
        return;
    }
    // Bounded concurrency: a channel created with thousands of members must not open thousands of requests at once.
    for (let i = 0; i < derived.length; i += 256) {
      await Promise.all(
        derived.slice(i, i + 256).map((d) => this.runtime.store.append(this.runtime.subjects.user(d.userId), d.event, { msgId: `m:${msg.seq}:${d.userId}` })),
      );
    }
  }
}
