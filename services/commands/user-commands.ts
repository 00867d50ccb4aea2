import type { AppendResult, Command, Subjects, UserEvent, UserId } from '../../contracts/index.js';
import { AppError } from '../runtime/errors.js';
import type { EventLog } from '../event-log/event-log.js';
import type { ConversationCommands } from './conversation-commands.js';

type UserCommand = Extract<Command, { t: 'mark_read' | 'mark_delivered' | 'set_preferences' | 'block' | 'unblock' }>;

/**
 * Commands on the user's own subject: read and delivery markers, per
 * conversation preferences, blocks. They need no conditional append: markers
 * are monotonic (readers keep the maximum) and settings are last-writer-wins,
 * which is what a user changing a setting on two devices expects.
 */
export class UserCommands {
  constructor(
    private readonly store: EventLog,
    private readonly subjects: Subjects,
    private readonly conversations: ConversationCommands,
    private readonly now: () => number = Date.now,
  ) {}

  async apply(actor: UserId, command: UserCommand): Promise<AppendResult> {
    const event = await this.decide(actor, command);
    const subject = this.subjects.user(actor);
    const { seq } = await this.store.append(subject, event);
    if (command.t === 'block' || command.t === 'unblock') {
      // The rule "no 1:1 messages while blocked" must be enforced atomically with sends, so it also lives on the 1:1's subject.
      await this.conversations.setDirectBlock(actor, command.userId, command.t === 'block');
    }
    return { ...('conversationId' in command ? { conversationId: command.conversationId } : {}), seq, pos: this.conversations.positionOf(subject, seq) };
  }

  private async decide(actor: UserId, command: UserCommand): Promise<UserEvent> {
    const base = { v: 1 as const, at: this.now(), actor };
    switch (command.t) {
      case 'mark_read':
      case 'mark_delivered': {
        const state = await this.conversations.loadChecked(command.conversationId, (s) => s.members.has(actor));
        if (!state.members.has(actor)) throw new AppError('not_member', 'you are not a member of this conversation');
        // A marker past the conversation's last event would hide messages that do not exist yet.
        const seq = Math.min(command.seq, state.version);
        const type = command.t === 'mark_read' ? 'read.marked' : 'delivered.marked';
        return { type, ...base, data: { conversationId: command.conversationId, seq } };
      }
      case 'set_preferences': {
        const state = await this.conversations.loadChecked(command.conversationId, (s) => s.members.has(actor));
        if (!state.members.has(actor)) throw new AppError('not_member', 'you are not a member of this conversation');
        const { conversationId, mutedUntil, pinned, archived } = command;
        if (mutedUntil === undefined && pinned === undefined && archived === undefined)
          throw new AppError('invalid_request', 'set at least one of mutedUntil, pinned, archived');
        return {
          type: 'preferences.set',
          ...base,
          data: {
            conversationId,
            ...(mutedUntil !== undefined ? { mutedUntil } : {}),
            ...(pinned !== undefined ? { pinned } : {}),
            ...(archived !== undefined ? { archived } : {}),
            // The membership decided against: readers of the conversation's shard wait for it (read model, notifier).
            conversationSeq: state.version,
          },
        };
      }
      case 'block':
      case 'unblock':
        if (command.userId === actor) throw new AppError('invalid_request', 'you cannot block yourself');
        return { type: command.t === 'block' ? 'user.blocked' : 'user.unblocked', ...base, data: { userId: command.userId } };
    }
  }
}
