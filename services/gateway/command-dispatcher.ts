import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { Command, CommandResult, ReceiptFrame, Subjects, TypingFrame, UserId } from '../../contracts/index.js';
import { AppError } from '../runtime/errors.js';
import type { ConversationCommands } from '../commands/conversation-commands.js';
import type { UserCommands } from '../commands/user-commands.js';
import { EPHEMERAL_SENDER_HEADER } from './ws/live-hub.js';

/** How long a typing indicator shows without being renewed. */
export const TYPING_TTL_MS = 5000;

/**
 * Routes a validated command to the write side that owns it. The same path
 * serves WebSocket frames and `POST /v1/commands`, so both transports obey
 * identical rules. Returns null for commands that are never acknowledged
 * (typing).
 */
export class CommandDispatcher {
  constructor(
    private readonly conversations: ConversationCommands,
    private readonly users: UserCommands,
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
  ) {}

  async execute(actor: UserId, command: Command): Promise<CommandResult | null> {
    switch (command.t) {
      case 'create':
        return this.conversations.create(actor, command);
      case 'send':
        return this.conversations.send(actor, command);
      case 'typing':
        await this.typing(actor, command.conversationId);
        return null;
      case 'mark_read':
      case 'mark_delivered': {
        const result = await this.users.apply(actor, command);
        await this.receipt(actor, command.conversationId, command.t === 'mark_read' ? 'read' : 'delivered', result.seq);
        return result;
      }
      case 'set_preferences':
      case 'block':
      case 'unblock':
        return this.users.apply(actor, command);
      default:
        return this.conversations.apply(actor, command);
    }
  }

  private async typing(actor: UserId, conversationId: string): Promise<void> {
    const state = await this.conversations.loadChecked(conversationId, (s) => s.members.has(actor));
    if (!state.members.has(actor)) throw new AppError('not_member', 'you are not a member of this conversation');
    const frame: TypingFrame = { t: 'typing', conversationId, userId: actor, expiresAt: Date.now() + TYPING_TTL_MS };
    // The typist's own devices are left out (live-hub.ts): nobody needs to see that they are typing.
    const h = headers();
    h.set(EPHEMERAL_SENDER_HEADER, actor);
    this.nc.publish(this.subjects.ephemeral(conversationId), JSON.stringify(frame), { headers: h });
  }

  /** Live "seen by": members see each other's markers move. Channels are too large for per-reader signals. */
  private async receipt(actor: UserId, conversationId: string, kind: 'read' | 'delivered', markerSeq: number): Promise<void> {
    const state = await this.conversations.load(conversationId);
    if (state.kind === 'channel') return;
    const stored = await this.markerValue(actor, markerSeq);
    if (stored === null) return;
    const frame: ReceiptFrame = { t: 'receipt', conversationId, userId: actor, kind, seq: stored };
    this.nc.publish(this.subjects.ephemeral(conversationId), JSON.stringify(frame));
  }

  /** The marker value actually stored (it is clamped to the conversation's last event). */
  private async markerValue(actor: UserId, eventSeq: number): Promise<number | null> {
    // The marker is an event of the actor's own subject (in the actor's shard).
    const stored = await this.conversations.storedEvent(this.subjects.user(actor), eventSeq);
    if (!stored || (stored.type !== 'read.marked' && stored.type !== 'delivered.marked')) return null;
    return stored.data.seq;
  }
}
