import type {
  AppendResult,
  AttachmentRef,
  Command,
  ConversationEvent,
  CreateConversationRequest,
  CreateConversationResponse,
  ParleyEvent,
  SendResult,
  Subjects,
  UserId,
} from '../../contracts/index.js';
import { AttachmentId, encodeShardPosition } from '../../contracts/index.js';
import type { DecideContext, MessageRules } from '../domain/conversation/decide-messages.js';
import { decideDelete, decideEdit, decideReaction, decideRecall, decideSend } from '../domain/conversation/decide-messages.js';
import {
  decideAddMembers,
  decideCreate,
  decideDirectBlock,
  decideJoin,
  decidePolicies,
  decideRemove,
  decideRename,
  decideSetRole,
  decideTransfer,
} from '../domain/conversation/decide-membership.js';
import { emptyConversation, evolve, priorSend, type ConversationState, type MessageInfo } from '../domain/conversation/state.js';
import { directConversationId } from '../domain/direct.js';
import { AppError } from '../runtime/errors.js';
import { KeyedQueue } from '../concurrency/keyed-queue.js';
import type { Logger } from '../observability/logger.js';
import { LruMap } from '../limits/lru.js';
import { WrongLastSequence } from '../event-log/event-store.js';
import type { EventLog } from '../event-log/event-log.js';
import type { ShardInfo } from '../event-log/streams.js';
import { ConversationStateReader } from './state-reader.js';
import type { SnowflakeGenerator } from '../ids/snowflake.js';

/** Finds a message a sender already stored under a client message id, for conversations whose log start aged out. */
export interface IdempotencyIndex {
  findMessage(conversationId: string, senderId: UserId, clientMsgId: string): Promise<{ seq: number } | null>;
}

/** Resolves uploaded attachment ids into references (name, size, type), or throws `not_found`. */
export interface AttachmentCatalog {
  resolve(ids: string[]): Promise<AttachmentRef[]>;
}

export interface ConversationCommandsDeps {
  /** The log; a conversation's events are all on its subject, in its shard. */
  store: EventLog;
  subjects: Subjects;
  ids: SnowflakeGenerator;
  log: Logger;
  idempotency: IdempotencyIndex;
  attachments: AttachmentCatalog;
  rules: MessageRules;
  now?: () => number;
  /** Conversation states kept in memory. */
  cacheSize?: number;
  /** How long a command goes on after lost races (CONTENTION_BUDGET_MS; tests shorten it). */
  contentionBudgetMs?: number;
}

type Decision = (state: ConversationState, ctx: DecideContext) => ConversationEvent | null;
type ConversationCommand = Exclude<Command, { t: 'create' | 'mark_read' | 'mark_delivered' | 'set_preferences' | 'block' | 'unblock' | 'typing' | 'send' }>;

/**
 * How long a command goes on after lost races before it answers `conflict`. Every lost race means
 * another append to the conversation succeeded, so retrying cannot livelock; a fixed count (8 once)
 * ran out whenever another gateway had a queue of its own for the conversation (it wins every race
 * until its queue is empty). Only contention that stops this gateway for this long is refused; it is
 * the SDK's request timeout, after which the client has given up on the answer anyway.
 */
const CONTENTION_BUDGET_MS = 10_000;
/**
 * Lost races in a row before each retry waits a random pause (growing, at most PAUSE_MAX_MS): only a
 * command that keeps losing, so that it spends fewer appends and reads on a rival it cannot overtake.
 * Earlier ones go at once: a pause hands the next race to the rival.
 */
const RACES_BEFORE_PAUSE = 8;
const PAUSE_MAX_MS = 20;

/** A send turned out to be a retry of a message already stored (thrown out of the decision to end it). */
class AlreadySent extends Error {
  constructor(
    readonly messageId: string,
    readonly info: MessageInfo,
  ) {
    super('message already stored under this client message id');
  }
}

/**
 * The write side for conversations: load state, decide, append conditionally
 * on the state's version, and on a concurrent change reload and decide again.
 * Edges (WebSocket, HTTP) call these methods and never touch the log.
 */
export class ConversationCommands {
  private readonly cache: LruMap<string, ConversationState>;
  private readonly queue = new KeyedQueue();
  private readonly now: () => number;

  private readonly reader: ConversationStateReader;

  constructor(private readonly deps: ConversationCommandsDeps) {
    this.cache = new LruMap(deps.cacheSize ?? 10_000);
    this.now = deps.now ?? Date.now;
    this.reader = new ConversationStateReader({ store: deps.store, subjects: deps.subjects, log: deps.log, cache: this.cache });
  }

  async create(actor: UserId, request: CreateConversationRequest): Promise<CreateConversationResponse> {
    if (request.kind === 'direct') {
      if (request.peer === actor) throw new AppError('invalid_request', 'a 1:1 conversation needs another user');
      const id = directConversationId(actor, request.peer);
      const members = [actor, request.peer].map((userId) => ({ userId, role: 'member' as const }));
      try {
        const r = await this.execute(id, actor, (s, ctx) => decideCreate(s, { kind: 'direct', title: null, members }, ctx), `create:${id}`);
        return { conversationId: id, kind: 'direct', created: !r.duplicate, seq: r.seq };
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'conflict')) throw err;
        // The pair's conversation exists already: it is the answer.
        return { conversationId: id, kind: 'direct', created: false, seq: (await this.load(id)).version };
      }
    }
    let others = [...new Set(request.members)];
    let fromConversationId: string | undefined;
    if (request.kind === 'group' && request.fromConversationId) {
      const from = await this.load(request.fromConversationId);
      if (!from.members.has(actor)) throw new AppError('not_member', 'you are not a member of that conversation');
      if (from.kind !== 'direct') throw new AppError('invalid_request', 'a group can be started from a 1:1 conversation');
      others = [...new Set([...from.members.keys(), ...others])];
      fromConversationId = request.fromConversationId;
    }
    const members = [{ userId: actor, role: 'owner' as const }, ...others.filter((m) => m !== actor).map((userId) => ({ userId, role: 'member' as const }))];
    const id = `${request.kind === 'group' ? 'g' : 'c'}_${this.deps.ids.next()}`;
    const channel = request.kind === 'channel' ? { postPolicy: request.postPolicy, joinPolicy: request.joinPolicy } : {};
    const r = await this.execute(id, actor, (s, ctx) =>
      decideCreate(s, { kind: request.kind, title: request.title, members, ...channel, ...(fromConversationId ? { fromConversationId } : {}) }, ctx),
    );
    return { conversationId: id, kind: request.kind, created: true, seq: r.seq };
  }

  async send(
    actor: UserId,
    input: { conversationId: string; clientMsgId: string; text: string; replyTo?: string | undefined; attachments?: string[] | undefined },
  ): Promise<SendResult> {
    const { conversationId, clientMsgId } = input;
    // Attachment ids are whatever POST /v1/attachments answered: one that names no upload, in any spelling, is `not_found`.
    const notAnUpload = input.attachments?.find((id) => !AttachmentId.safeParse(id).success);
    const resolved =
      notAnUpload !== undefined
        ? Promise.reject(new AppError('not_found', `no uploaded attachment ${JSON.stringify(notAnUpload)}`))
        : input.attachments?.length
          ? this.deps.attachments.resolve(input.attachments)
          : Promise.resolve(undefined);
    // Awaited in the queue; this only keeps an early failure from counting as unhandled.
    resolved.catch(() => undefined);
    // The decision and the append run in the conversation's queue, so messages pipelined by one device
    // are stored in the order they were sent.
    return this.queue.run(conversationId, async () => {
      const state = await this.load(conversationId);
      // A retry, however late, is answered from the write-side state, which holds every message of the
      // conversation. Only when the log's start has aged out does the read model have to be asked.
      const known = priorSend(state, actor, clientMsgId);
      if (known) return this.sendResult(conversationId, clientMsgId, known.messageId, known.info, true);
      if (!state.fromStart) {
        const original = await this.deps.idempotency.findMessage(conversationId, actor, clientMsgId);
        if (original) return this.resultFromStored(conversationId, original.seq, true);
      }
      const attachments = await resolved;
      const messageId = this.deps.ids.next();
      let r;
      try {
        r = await this.executeLocked(
          conversationId,
          actor,
          (s, ctx) => {
            // Another gateway stored it meanwhile (seen once the conditional append failed and the state was reloaded).
            const stored = priorSend(s, actor, clientMsgId);
            if (stored) throw new AlreadySent(stored.messageId, stored.info);
            return decideSend(
              s,
              { messageId, clientMsgId, text: input.text, ...(input.replyTo ? { replyTo: input.replyTo } : {}), ...(attachments ? { attachments } : {}) },
              ctx,
            );
          },
          // The log's own dedup id catches a retry racing its original on another gateway within its window.
          `send:${conversationId}:${actor}:${clientMsgId}`,
        );
      } catch (err) {
        if (err instanceof AlreadySent) return this.sendResult(conversationId, clientMsgId, err.messageId, err.info, true);
        throw err;
      }
      if (r.duplicate || !r.event || r.event.type !== 'message.sent') return this.resultFromStored(conversationId, r.seq, true);
      return { conversationId, messageId, clientMsgId, seq: r.seq, pos: this.position(conversationId, r.seq), at: r.event.at, duplicate: false };
    });
  }

  private sendResult(conversationId: string, clientMsgId: string, messageId: string, info: MessageInfo, duplicate: boolean): SendResult {
    return { conversationId, messageId, clientMsgId, seq: info.seq, pos: this.position(conversationId, info.seq), at: info.at, duplicate };
  }

  /** Every conversation command that appends at most one event and answers with its position. */
  async apply(actor: UserId, command: ConversationCommand): Promise<AppendResult> {
    const id = command.conversationId;
    const decision: Decision = (s, ctx) => {
      switch (command.t) {
        case 'edit':
          return decideEdit(s, command.messageId, command.text, ctx);
        case 'recall':
          return decideRecall(s, command.messageId, ctx);
        case 'delete':
          return decideDelete(s, command.messageId, ctx);
        case 'react':
        case 'unreact':
          return decideReaction(s, command.messageId, command.emoji, command.t === 'react', ctx);
        case 'add_members':
          return decideAddMembers(s, command.userIds, ctx);
        case 'remove_member':
          return decideRemove(s, command.userId, ctx);
        case 'leave':
          return decideRemove(s, ctx.actor, ctx);
        case 'join':
          return decideJoin(s, ctx);
        case 'rename':
          return decideRename(s, command.title, ctx);
        case 'set_role':
          return decideSetRole(s, command.userId, command.role, ctx);
        case 'transfer_ownership':
          return decideTransfer(s, command.userId, ctx);
        case 'set_channel_policies':
          return decidePolicies(s, command.postPolicy, command.joinPolicy, ctx);
      }
    };
    const r = await this.execute(id, actor, decision);
    return { conversationId: id, seq: r.seq, pos: this.position(id, r.seq) };
  }

  /** Records (or lifts) `actor`'s block on the 1:1 with `peer`, if that conversation exists. */
  async setDirectBlock(actor: UserId, peer: UserId, blocked: boolean): Promise<void> {
    const id = directConversationId(actor, peer);
    if (!(await this.load(id)).exists) return;
    await this.execute(id, actor, (s, ctx) => decideDirectBlock(s, blocked, ctx));
  }

  /**
   * The conversation's state, refreshed from the log when `check` fails on the
   * cached copy (a membership another gateway just granted, say).
   */
  async loadChecked(conversationId: string, check: (state: ConversationState) => boolean): Promise<ConversationState> {
    const state = await this.load(conversationId);
    if (check(state)) return state;
    return this.queue.run(conversationId, () => this.reader.refresh(state));
  }

  /** Current state of a conversation as the write side sees it (folded from the log). */
  async load(conversationId: string): Promise<ConversationState> {
    const cached = this.cache.get(conversationId);
    if (cached) return cached;
    return this.reader.refresh(emptyConversation(conversationId));
  }

  /** A stored event by its sequence in the shard of the stored `subject` (null if it does not exist). */
  async storedEvent(subject: string, seq: number): Promise<ParleyEvent | null> {
    return (await this.deps.store.getOn(subject, seq))?.event ?? null;
  }

  /** The position of the event at `seq` of a stored subject: in the subject's shard. */
  positionOf(subject: string, seq: number): string {
    const { shard, epoch } = this.deps.store.infoFor(subject);
    return encodeShardPosition({ shard, epoch, seq });
  }

  private position(conversationId: string, seq: number): string {
    return this.positionOf(this.deps.subjects.conv(conversationId), seq);
  }

  private async resultFromStored(conversationId: string, seq: number, duplicate: boolean): Promise<SendResult> {
    const stored = await this.deps.store.getOn(this.deps.subjects.conv(conversationId), seq);
    if (!stored || stored.event.type !== 'message.sent') throw new AppError('internal', `stored message at ${seq} is missing`);
    const { data, at } = stored.event;
    return {
      conversationId: data.conversationId,
      messageId: data.messageId,
      clientMsgId: data.clientMsgId,
      seq,
      pos: this.position(conversationId, seq),
      at,
      duplicate,
    };
  }

  private execute(
    conversationId: string,
    actor: UserId,
    decision: Decision,
    msgId?: string,
  ): Promise<{ seq: number; event: ConversationEvent | null; duplicate: boolean }> {
    return this.queue.run(conversationId, () => this.executeLocked(conversationId, actor, decision, msgId));
  }

  /** Decide and append; the caller holds the conversation's queue. */
  private async executeLocked(
    conversationId: string,
    actor: UserId,
    decision: Decision,
    msgId?: string,
  ): Promise<{ seq: number; event: ConversationEvent | null; duplicate: boolean }> {
    let state = await this.load(conversationId);
    // Another gateway may have changed the conversation since it was cached. A successful
    // decision is checked by the conditional append; a refusal or a no-op is re-decided
    // once on fresh state before it is answered.
    let fresh = false;
    let raced = false;
    // The subject's last sequence the append is conditional on: the state's, unless the subject's older
    // events left the stream (max-age retention, a purge) and it now ends before the state does.
    let expected: number | null = null;
    const subject = this.deps.subjects.conv(conversationId);
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      let event: ConversationEvent | null;
      try {
        event = decision(state, { actor, now: this.now(), rules: this.deps.rules });
      } catch (err) {
        if (fresh || !(err instanceof AppError)) throw err;
        state = await this.reader.refresh(state);
        fresh = true;
        continue;
      }
      if (!event) {
        if (fresh) return { seq: state.version, event: null, duplicate: false };
        state = await this.reader.refresh(state);
        fresh = true;
        continue;
      }
      // After a lost race the rival gateway has likely appended again by the time this one learns what it
      // stored (its state is current, its next command goes at once): the next event after this state is
      // asked for along with the append, so that a retry needs no read of its own and races as an equal.
      const appended = this.deps.store.append(subject, event, { expectedLastSubjectSeq: expected ?? state.version, ...(msgId ? { msgId } : {}) });
      const ahead = raced ? this.reader.nextEntry(subject, state.version) : null;
      try {
        const result = await appended;
        if (result.duplicate && result.seq === 0) {
          // A replicated stream knows this Nats-Msg-Id but has no sequence for it yet: the original append
          // is proposed and not applied (its leader lost its quorum), and every retry in the dedup window
          // would get the same answer. The log decides instead: on the state reloaded from it the decision
          // finds the message if it was stored, and otherwise the append goes again without the id, still
          // conditional on the subject's last sequence, so the original and the retry cannot both be stored
          // (docs/reliability.md).
          this.deps.log.warn('append answered as a duplicate without a sequence; deciding again on the log', { conversationId, msgId });
          msgId = undefined;
          state = await this.reader.catchUp(state, await this.deps.store.lastSubjectSeq(subject), null);
          fresh = true;
          continue;
        }
        if (!result.duplicate) evolve(state, event, result.seq);
        return { seq: result.seq, event, duplicate: result.duplicate };
      } catch (err) {
        if (!(err instanceof WrongLastSequence)) throw err;
        if (performance.now() - started >= (this.deps.contentionBudgetMs ?? CONTENTION_BUDGET_MS)) {
          this.deps.log.warn('conditional appends kept losing races: answering conflict', { conversationId, attempts: attempt });
          throw new AppError('conflict', `too much contention on ${conversationId}, retry`);
        }
        this.deps.log.debug('conditional append lost a race, catching up', { conversationId, attempt });
        if (err.lastSeq !== null && err.lastSeq < (expected ?? state.version)) {
          // The log ends before this state: no rival appended, the subject's events aged out of the stream.
          // Checked rather than taken from the refusal; the append then goes after what the log still has.
          const actual = await this.deps.store.lastSubjectSeq(subject);
          if (actual < state.version) {
            this.deps.log.info("the conversation's earlier events left the stream; appending after what remains", {
              conversationId,
              stateVersion: state.version,
              subjectLastSeq: actual,
            });
            expected = actual;
            continue;
          }
        }
        expected = null;
        state = await this.reader.catchUp(state, err.lastSeq, ahead ? await ahead : null);
        fresh = true;
        raced = true;
        // The retries go without the dedup id. The refused append stored nothing, and a replicated stream
        // may still hold its id as pending (it answers the retry "duplicate" without a sequence, costing
        // a round trip and a reload). Without the id the retry is still conditional on the subject's last
        // sequence, and the decision on the caught-up state finds the message if a retry of it through
        // another gateway was stored meanwhile: the original and a retry cannot both be stored.
        msgId = undefined;
        if (attempt >= RACES_BEFORE_PAUSE)
          await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(PAUSE_MAX_MS, 2 ** (attempt - RACES_BEFORE_PAUSE))));
      }
    }
  }
}
