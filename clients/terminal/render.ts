import type { ConversationSummary, MessageView } from '../../contracts/index.js';
import { displayWidth, padEnd, sanitize, sanitizeLine, truncate } from './text.js';

/**
 * Turns conversations, messages and signals into plain text lines. Pure: the
 * entry point decides where lines go. Colours only when asked for (a TTY
 * without NO_COLOR), so piped output stays plain.
 */
export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  accent(s: string): string;
  warn(s: string): string;
}

const plain: Style = { bold: (s) => s, dim: (s) => s, accent: (s) => s, warn: (s) => s };
const sgr = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;
const ansi: Style = { bold: sgr(1, 22), dim: sgr(2, 22), accent: sgr(36, 39), warn: sgr(33, 39) };

export function makeStyle(color: boolean): Style {
  return color ? ansi : plain;
}

/** What the renderer needs of a message: a history row, or a live `message.sent` event. */
export interface MessageLike {
  seq: number;
  senderId: string;
  text: string;
  at: number;
  status?: MessageView['status'];
  editedAt?: number | null;
  replyTo?: { seq: number; senderId?: string | null; preview?: string | null } | null;
  attachments?: readonly { name: string; size: number }[];
  reactions?: readonly { emoji: string; count: number }[];
}

export type ConversationInfo = Pick<ConversationSummary, 'conversationId' | 'kind' | 'title' | 'peer'> & { memberCount?: number };

export class Renderer {
  constructor(
    readonly me: string,
    private readonly style: Style = plain,
    /** Terminal width in columns (previews are cut to fit). */
    private readonly columns: () => number = () => 100,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** "bob" for a 1:1, the title for a group, "#title" for a channel. */
  title(c: ConversationInfo): string {
    const name = c.kind === 'direct' ? (c.peer ?? 'direct') : (c.title ?? c.kind);
    return sanitizeLine(c.kind === 'channel' ? `#${name}` : name);
  }

  time(at: number): string {
    const d = new Date(at);
    const now = this.now();
    const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
    const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
    return sameDay ? hm : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${hm}`;
  }

  /** A message as one or more lines: `[12:04] bob: 你好 👋`, continuation lines indented. */
  message(m: MessageLike): string[] {
    const s = this.style;
    const who = m.senderId === this.me ? s.accent(m.senderId) : s.bold(m.senderId);
    const head = `${s.dim(`[${this.time(m.at)}]`)} ${who}: `;
    const lines: string[] = [];
    if (m.replyTo) {
      const preview = m.replyTo.preview ? `: ${truncate(sanitizeLine(m.replyTo.preview), 40)}` : '';
      lines.push(s.dim(`  ↪ reply to ${m.replyTo.senderId ?? 'a message'}${preview}`));
    }
    if (m.status === 'recalled' || m.status === 'deleted') {
      lines.push(head + s.dim(`(message ${m.status})`));
      return lines;
    }
    const body = sanitize(m.text).replace(/\t/g, '    ').split('\n');
    const suffix: string[] = [];
    if (m.editedAt) suffix.push(s.dim('(edited)'));
    for (const a of m.attachments ?? []) suffix.push(`[📎 ${sanitizeLine(a.name)} ${size(a.size)}]`);
    const reactions = (m.reactions ?? []).map((r) => `${sanitizeLine(r.emoji)}${r.count > 1 ? r.count : ''}`).join(' ');
    if (reactions) suffix.push(reactions);
    body.forEach((text, i) => {
      const last = i === body.length - 1 && suffix.length > 0 ? ` ${suffix.join(' ')}` : '';
      lines.push((i === 0 ? head : '    ') + text + last);
    });
    return lines;
  }

  /** `/list` row: ` 2. Team 🚀        3 unread  [09:15] bob: see you…` */
  conversation(n: number, c: ConversationSummary, width = 20): string {
    const s = this.style;
    const title = padEnd(truncate(this.title(c), width), width);
    const unreadText = c.unread > 0 ? `${c.unread} unread${c.mentions > 0 ? ` (${c.mentions} @)` : ''}` : '';
    const unreadCol = Math.max(10, displayWidth(unreadText));
    const muted = c.mutedUntil !== null && c.mutedUntil > this.now().getTime();
    const flags = [c.pinned ? '📌' : '', muted ? '(muted)' : ''].filter(Boolean).join(' ');
    const head = `${String(n).padStart(2)}. ${c.unread > 0 ? s.bold(title) : title}  ${s.warn(padEnd(unreadText, unreadCol))} ${flags ? `${flags} ` : ''}`;
    const used = 4 + width + 2 + unreadCol + 1 + (flags ? displayWidth(flags) + 1 : 0);
    const last = c.lastMessage;
    if (!last) return head + s.dim('(no messages)');
    const stamp = `[${this.time(last.at)}]`;
    const who = `${last.senderId}: `;
    const text = last.status === 'active' ? sanitizeLine(last.text) || '(attachment)' : `(message ${last.status})`;
    const room = Math.max(10, this.columns() - used - displayWidth(stamp) - 1 - displayWidth(who));
    return `${head}${s.dim(stamp)} ${who}${truncate(text, room)}`;
  }

  /** `── bob · 1:1 ──` before a conversation's history. */
  header(c: ConversationInfo): string {
    const kind = c.kind === 'direct' ? '1:1' : c.memberCount !== undefined ? `${c.kind}, ${c.memberCount} members` : c.kind;
    return this.style.bold(`── ${this.title(c)} · ${kind} ──`);
  }

  /** One line about a message in a conversation other than the open one. */
  notice(c: ConversationInfo | undefined, conversationId: string, senderId: string, text: string): string {
    const where = c ? this.title(c) : conversationId;
    const head = `» [${where}] ${senderId}: `;
    return this.style.accent(head) + truncate(sanitizeLine(text), Math.max(20, this.columns() - displayWidth(head)));
  }

  info(text: string): string {
    return this.style.dim(`» ${sanitizeLine(text)}`);
  }

  error(text: string): string {
    return this.style.warn(`! ${sanitizeLine(text)}`);
  }

  typing(userId: string): string {
    return this.style.dim(`  ${userId} is typing…`);
  }

  seenBy(userIds: readonly string[]): string {
    return this.style.dim(`  ✓ seen by ${userIds.join(', ')}`);
  }
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
