import type { ConversationEvent, CreateConversationRequest, CreateConversationResponse, SendResult, Subjects, UserId } from '../../../contracts/index.js';
import { encodeShardPosition } from '../../../contracts/index.js';
import { decide, emptyConversation, evolve, type ConversationCommand, type ConversationState } from '../domain/conversation.js';
import { directConversationId } from '../domain/direct.js';
import { AppError } from '../errors.js';
import { KeyedQueue } from '../keyed-queue.js';
import type { Logger } from '../logger.js';
import { LruMap } from '../lru.js';
import { WrongLastSequence, type EventStore } from '../nats/event-store.js';
import type { ShardInfo } from '../nats/streams.js';
import type { SnowflakeGenerator } from '../snowflake.js';

/** Finds a message a sender already stored under a client message id, beyond the log's dedup window. */
export interface IdempotencyIndex {
  findMessage(conversationId: string, senderId: UserId, clientMsgId: string): Promise<{ seq: number } | null>;
}

export interface ConversationCommandsDeps {
  store: EventStore;
  subjects: Subjects;
  shard: ShardInfo;
  ids: SnowflakeGenerator;
  log: Logger;
  idempotency: IdempotencyIndex;
  now?: () => number;
  /** Conversation states kept in memory. */
  cacheSize?: number;
}

const MAX_ATTEMPTS = 8;

/**
 * The write side for conversations: load state, decide, append conditionally
 * on the state's version, retry on a concurrent change. Handlers at the edge
 * (WebSocket, HTTP) call these methods and never touch the log themselves.
 */
export class ConversationCommands {
  private readonly cache: LruMap<string, ConversationState>;
  private readonly queue = new KeyedQueue();
  private readonly now: () => number;

  constructor(private readonly deps: ConversationCommandsDeps) {
    this.cache = new LruMap(deps.cacheSize ?? 50_000);
    this.now = deps.now ?? Date.now;
  }

  async create(actor: UserId, request: CreateConversationRequest): Promise<CreateConversationResponse> {
    if (request.kind === 'direct') {
      if (request.peer === actor) throw new AppError('invalid_request', 'a 1:1 conversation needs another user');
      const id = directConversationId(actor, request.peer);
      const members = [
        { userId: actor, role: 'member' as const },
        { userId: request.peer, role: 'member' as const },
      ];
      try {
        const { seq, duplicate } = await this.execute(id, actor, { type: 'create', kind: 'direct', title: null, members }, `create:${id}`);
        return { conversationId: id, kind: 'direct', created: !duplicate, seq };
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'conflict')) throw err;
        // The pair's conversation exists already: it is the answer.
        const state = await this.load(id);
        return { conversationId: id, kind: 'direct', created: false, seq: state.version };
      }
    }
    const id = `g_${this.deps.ids.next()}`;
    const others = [...new Set(request.members)].filter((m) => m !== actor);
    const members = [{ userId: actor, role: 'owner' as const }, ...others.map((userId) => ({ userId, role: 'member' as const }))];
    const { seq } = await this.execute(id, actor, { type: 'create', kind: 'group', title: request.title, members });
    return { conversationId: id, kind: 'group', created: true, seq };
  }

  async send(actor: UserId, input: { conversationId: string; clientMsgId: string; text: string }): Promise<SendResult> {
    const { conversationId, clientMsgId } = input;
    // Retries later than the log's dedup window are answered from the read model.
    const known = await this.deps.idempotency.findMessage(conversationId, actor, clientMsgId);
    if (known) return this.resultFromStored(known.seq, true);
    const command: ConversationCommand = { type: 'send', messageId: this.deps.ids.next(), clientMsgId, text: input.text };
    const { seq, event, duplicate } = await this.execute(conversationId, actor, command, `send:${conversationId}:${actor}:${clientMsgId}`);
    if (duplicate) return this.resultFromStored(seq, true);
    if (event.type !== 'message.sent') throw new Error('send produced an unexpected event');
    return {
      conversationId,
      messageId: event.data.messageId,
      clientMsgId,
      seq,
      pos: this.position(seq),
      at: event.at,
      duplicate: false,
    };
  }

  /** Current state of a conversation as the write side sees it (folded from the log). */
  async load(conversationId: string): Promise<ConversationState> {
    const cached = this.cache.get(conversationId);
    if (cached) return cached;
    return this.refresh(emptyConversation(conversationId));
  }

  private position(seq: number): string {
    return encodeShardPosition({ shard: this.deps.shard.shard, epoch: this.deps.shard.epoch, seq });
  }

  private async resultFromStored(seq: number, duplicate: boolean): Promise<SendResult> {
    const stored = await this.deps.store.get(seq);
    if (!stored || stored.event.type !== 'message.sent') throw new AppError('internal', `stored message at ${seq} is missing`);
    const { data, at } = stored.event;
    return { conversationId: data.conversationId, messageId: data.messageId, clientMsgId: data.clientMsgId, seq, pos: this.position(seq), at, duplicate };
  }

  /** Folds events stored after `state.version` into it. */
  private async refresh(state: ConversationState): Promise<ConversationState> {
    let next = state;
    for await (const stored of this.deps.store.readSubject(this.deps.subjects.conv(state.id), state.version)) {
      next = evolve(next, stored.event as ConversationEvent, stored.seq);
    }
    this.cache.set(state.id, next);
    return next;
  }

  private execute(
    conversationId: string,
    actor: UserId,
    command: ConversationCommand,
    msgId?: string,
  ): Promise<{ seq: number; event: ConversationEvent; duplicate: boolean }> {
    return this.queue.run(conversationId, async () => {
      let state = await this.load(conversationId);
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const [event] = decide(state, command, { actor, now: this.now() });
        if (!event) throw new Error('decide produced no event');
        try {
          const subject = this.deps.subjects.conv(conversationId);
          const result = await this.deps.store.append(subject, event, {
            expectedLastSubjectSeq: state.version,
            ...(msgId ? { msgId } : {}),
          });
          if (!result.duplicate) this.cache.set(conversationId, evolve(state, event, result.seq));
          return { seq: result.seq, event, duplicate: result.duplicate };
        } catch (err) {
          if (!(err instanceof WrongLastSequence)) throw err;
          this.deps.log.debug('conditional append lost a race, reloading', { conversationId, attempt });
          state = await this.refresh(state);
        }
      }
      throw new AppError('conflict', `too much contention on ${conversationId}, retry`);
    });
  }
}
