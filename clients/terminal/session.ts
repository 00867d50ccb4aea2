import {
  positionSeq,
  type Command,
  type CreateConversationResponse,
  type EventFrame,
  type MessageView,
  type ReceiptFrame,
  type SyncedFrame,
  type TypingFrame,
} from '../../contracts/index.js';
import { ParleyError, type ConnectionState, type ParleyClient } from '../sdk/index.js';
import { HELP, HISTORY_PAGE, parseLine } from './commands.js';
import type { ParleyHttp } from './http.js';
import type { ConversationInfo, MessageLike, Renderer } from './render.js';

/** Where the session's output goes: whole lines, written whenever something happens. */
export interface Screen {
  line(text: string): void;
  /** The prompt (shows the open conversation); a screen without a terminal may ignore it. */
  setPrompt(text: string): void;
}

export interface SessionOptions {
  client: ParleyClient;
  http: ParleyHttp;
  renderer: Renderer;
  screen: Screen;
  /** Called once, after `/quit` (or end of input) has been handled. */
  onQuit?: () => void;
  now?: () => number;
}

/** A typing signal goes out at most this often while the user types (the server forwards no more anyway). */
export const TYPING_INTERVAL_MS = 2000;

interface OpenConversation {
  info: ConversationInfo;
  /** Events up to this sequence are on screen (from history or live): later ones are new. */
  covered: number;
  lastMessageSeq: number | null;
  /** `before` cursor of the next older history page; null at the beginning. */
  older: string | null;
  /** Live events that arrived while the history was loading, shown after it. */
  pending: EventFrame[] | null;
  /** Highest read marker shown per member, for "seen by" updates. */
  readBy: Map<string, number>;
  /** Members shown as typing, until their indicator expires. */
  typing: Map<string, { expiresAt: number; timer: ReturnType<typeof setTimeout> }>;
}

/**
 * The terminal client's behaviour, independent of the terminal: turns typed
 * lines into SDK commands and HTTP reads, and SDK events into lines. Lines are
 * handled one at a time, in order, so `/open` finishes before the message
 * typed after it is sent.
 */
export class TerminalSession {
  private readonly me: string;
  private readonly conversations = new Map<string, ConversationInfo>();
  private numbered: string[] = [];
  private open: OpenConversation | null = null;
  private queue: Promise<void> = Promise.resolve();
  private started = false;
  private quitting = false;
  private replaying = false;
  private lostConnection = false;
  private warnedOffline = false;
  private readonly missed = new Map<string, number>();
  private readonly createdHere = new Set<string>();
  private lastTypingSent = 0;
  private readonly now: () => number;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly o: SessionOptions) {
    this.me = o.renderer.me;
    this.now = o.now ?? Date.now;
  }

  /** Connects (resuming from the stored position) and loads the conversation list. Rejects if the server refuses the user. */
  start(): Promise<void> {
    const { client } = this.o;
    this.unsubscribe.push(
      client.on('event', (f) => this.onEvent(f)),
      client.on('synced', (f) => this.onSynced(f)),
      client.on('typing', (f) => this.onTyping(f)),
      client.on('receipt', (f) => this.onReceipt(f)),
      client.on('state', (s) => this.onState(s)),
      client.on('error', (e) => this.started && this.print(this.o.renderer.error(e.message))),
    );
    return this.enqueue(async () => {
      await client.connect();
      const list = await this.withAfter((after) => this.o.http.conversations(after === undefined ? {} : { after }));
      for (const c of list.conversations) this.conversations.set(c.conversationId, c);
      const unread = list.conversations.reduce((n, c) => n + c.unread, 0);
      const count = list.conversations.length;
      this.print(this.o.renderer.info(`signed in as ${this.me} · ${count} conversation${count === 1 ? '' : 's'}, ${unread} unread · /help lists the commands`));
      this.started = true;
      this.printMissed();
      this.updatePrompt();
    });
  }

  /** A line the user entered; handled after every earlier one. */
  input(line: string): Promise<void> {
    return this.enqueue(() => this.handle(line));
  }

  /** What the user is typing right now (on every keystroke): sends a typing signal, at most every 2 s. */
  keystroke(currentLine: string): void {
    if (!this.open || currentLine.trim() === '' || currentLine.startsWith('/')) return;
    if (this.o.client.state !== 'live') return;
    const now = this.now();
    if (now - this.lastTypingSent < TYPING_INTERVAL_MS) return;
    this.lastTypingSent = now;
    this.o.client.typing(this.open.info.conversationId);
  }

  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    this.clearTyping();
    this.o.client.close();
  }

  // ---- typed lines -------------------------------------------------------

  private async handle(line: string): Promise<void> {
    if (this.quitting) return;
    const r = this.o.renderer;
    const cmd = parseLine(line);
    try {
      switch (cmd.kind) {
        case 'empty':
          return;
        case 'invalid':
          return this.print(r.error(cmd.message));
        case 'help':
          for (const [usage, what] of HELP) this.print(`  ${usage.padEnd(26)} ${what}`);
          return;
        case 'quit':
          this.quitting = true;
          this.stop();
          this.o.onQuit?.();
          return;
        case 'list':
          return await this.list();
        case 'open':
          return await this.openTarget(cmd.target);
        case 'dm':
          return await this.create({ t: 'create', kind: 'direct', peer: cmd.user }, { kind: 'direct', title: null, peer: cmd.user, memberCount: 2 });
        case 'group':
          return await this.create(
            { t: 'create', kind: 'group', title: cmd.title, members: cmd.members },
            { kind: 'group', title: cmd.title, peer: null, memberCount: new Set([this.me, ...cmd.members]).size },
          );
        case 'history':
          return await this.history(cmd.count);
        case 'read':
          return await this.markRead();
        case 'who':
          return await this.who();
        case 'send':
          return this.send(cmd.text);
      }
    } catch (err) {
      this.print(r.error(describe(err)));
    }
  }

  private async list(): Promise<void> {
    const r = this.o.renderer;
    const res = await this.withAfter((after) => this.o.http.conversations(after === undefined ? {} : { after }));
    this.numbered = res.conversations.map((c) => c.conversationId);
    for (const c of res.conversations) this.conversations.set(c.conversationId, c);
    if (res.conversations.length === 0) return this.print(r.info('no conversations yet: /dm <user> or /group <title> <user...> starts one'));
    res.conversations.forEach((c, i) => this.print(r.conversation(i + 1, c)));
    if (res.nextCursor) this.print(r.info(`only the ${res.conversations.length} most recent are listed`));
  }

  private async openTarget(target: string): Promise<void> {
    let id = await this.resolve(target);
    if (id === null) {
      await this.refreshConversations();
      id = await this.resolve(target);
    }
    if (id === null) return this.print(this.o.renderer.error(`no conversation "${target}": /list shows them`));
    await this.openConversation(id);
  }

  private async resolve(target: string): Promise<string | null> {
    if (/^[0-9]+$/.test(target)) {
      if (this.numbered.length === 0) await this.list();
      return this.numbered[Number(target) - 1] ?? null;
    }
    if (/^[dgc]_[A-Za-z0-9_-]+$/.test(target)) return target;
    const wanted = target.toLowerCase();
    for (const c of this.conversations.values()) {
      if (this.o.renderer.title(c).toLowerCase() === wanted || (c.kind !== 'direct' && c.title?.toLowerCase() === wanted)) return c.conversationId;
    }
    return null;
  }

  private async create(command: Extract<Command, { t: 'create' }>, info: Omit<ConversationInfo, 'conversationId'>): Promise<void> {
    const result = (await this.o.client.command(command)) as CreateConversationResponse;
    this.createdHere.add(result.conversationId);
    if (!this.conversations.has(result.conversationId)) this.conversations.set(result.conversationId, { conversationId: result.conversationId, ...info });
    if (command.kind !== 'direct') this.print(this.o.renderer.info(`created ${this.o.renderer.title({ conversationId: result.conversationId, ...info })}`));
    await this.openConversation(result.conversationId, result.seq);
  }

  private async openConversation(conversationId: string, mustInclude = 0): Promise<void> {
    const r = this.o.renderer;
    if (!this.conversations.has(conversationId)) await this.refreshConversations().catch(() => undefined);
    const info = this.conversations.get(conversationId) ?? { conversationId, kind: kindOf(conversationId), title: conversationId, peer: conversationId };
    this.clearTyping();
    const open: OpenConversation = { info, covered: 0, lastMessageSeq: null, older: null, pending: [], readBy: new Map(), typing: new Map() };
    this.open = open;
    this.lastTypingSent = 0;
    let page;
    let floor = 0;
    try {
      page = await this.withAfter((after) => {
        floor = Math.max(after ?? 0, mustInclude);
        return this.o.http.history(conversationId, { limit: HISTORY_PAGE, ...(floor > 0 ? { after: floor } : {}) });
      }, mustInclude);
    } catch (err) {
      if (this.open === open) this.open = null;
      this.updatePrompt();
      throw err;
    }
    this.updatePrompt();
    this.print(r.header(info));
    if (page.nextCursor) this.print(r.info('earlier messages: /history'));
    if (page.messages.length === 0) this.print(r.info('no messages yet'));
    const oldestFirst = [...page.messages].reverse();
    for (const m of oldestFirst) this.printLines(r.message(fromView(m)));
    const newest = page.messages[0]?.seq ?? 0;
    // The read model had applied at least `floor` (and everything up to `newest`): live events up to there are in the page.
    open.covered = Math.max(floor, newest);
    open.lastMessageSeq = page.messages[0]?.seq ?? null;
    open.older = page.nextCursor;
    const pending = open.pending ?? [];
    open.pending = null;
    for (const f of pending) this.showInOpen(open, f);
  }

  private async history(count: number): Promise<void> {
    const r = this.o.renderer;
    const open = this.requireOpen();
    if (!open) return;
    if (open.older === null) return this.print(r.info('that is the beginning of the conversation'));
    const page = await this.o.http.history(open.info.conversationId, { limit: count, before: open.older });
    if (this.open !== open) return;
    this.print(r.info(`${page.messages.length} earlier message${page.messages.length === 1 ? '' : 's'} of ${r.title(open.info)}:`));
    for (const m of [...page.messages].reverse()) this.printLines(r.message(fromView(m)));
    open.older = page.nextCursor;
    this.print(r.info(open.older === null ? 'that is the beginning of the conversation' : 'more: /history'));
  }

  private async markRead(): Promise<void> {
    const open = this.requireOpen();
    if (!open) return;
    if (open.covered === 0) return this.print(this.o.renderer.info('nothing to mark read'));
    await this.o.client.command({ t: 'mark_read', conversationId: open.info.conversationId, seq: open.covered });
    this.print(this.o.renderer.info(`marked ${this.o.renderer.title(open.info)} read`));
  }

  private async who(): Promise<void> {
    const r = this.o.renderer;
    const open = this.requireOpen();
    if (!open) return;
    if (open.lastMessageSeq === null) return this.print(r.info('no messages yet'));
    const lastSeq = open.lastMessageSeq;
    const receipts = await this.o.http.receipts(open.info.conversationId, lastSeq);
    // Live receipts may be ahead of the read model the HTTP answer comes from.
    const liveSeen = [...open.readBy].filter(([, seq]) => seq >= lastSeq).map(([u]) => u);
    const seen = [...new Set([...receipts.seenBy, ...liveSeen])].filter((u) => u !== this.me);
    const delivered = receipts.deliveredTo.filter((u) => u !== this.me && !seen.includes(u));
    this.print(r.info(seen.length > 0 ? `last message seen by ${seen.join(', ')}` : 'last message not seen yet'));
    if (delivered.length > 0) this.print(r.info(`delivered to ${delivered.join(', ')}`));
  }

  private send(text: string): void {
    const open = this.requireOpen();
    if (!open) return;
    if (this.o.client.state !== 'live') this.print(this.o.renderer.info('offline: the message is queued and goes out on reconnect'));
    this.lastTypingSent = 0;
    const title = this.o.renderer.title(open.info);
    // Not awaited: the SDK queues it across reconnects; it shows up as the live event.
    this.o.client.send(open.info.conversationId, text).catch((err: unknown) => this.print(this.o.renderer.error(`not sent to ${title}: ${describe(err)}`)));
  }

  private requireOpen(): OpenConversation | null {
    if (!this.open) this.print(this.o.renderer.error('no conversation is open: /list, then /open <n>'));
    return this.open;
  }

  // ---- SDK events --------------------------------------------------------

  private onEvent(f: EventFrame): void {
    const r = this.o.renderer;
    const e = f.event;
    if (f.entity.kind === 'user') {
      if (e.type === 'membership.joined') {
        const id = e.data.conversationId;
        if (this.replaying || this.createdHere.has(id) || this.conversations.has(id)) return;
        void this.refreshConversations()
          .catch(() => undefined)
          .then(() => {
            if (!this.createdHere.has(id)) this.print(r.info(`you were added to ${this.describeConversation(id)} (/open ${id})`));
          });
      } else if (e.type === 'membership.left') {
        const id = e.data.conversationId;
        if (this.open?.info.conversationId === id) {
          this.print(r.info(`you are no longer a member of ${r.title(this.open.info)}`));
          this.clearTyping();
          this.open = null;
          this.updatePrompt();
        }
      }
      return;
    }
    const conversationId = f.entity.id;
    if (e.type === 'conversation.created') this.learn(conversationId, e.data);
    if (e.type === 'conversation.renamed') {
      const known = this.conversations.get(conversationId);
      if (known) this.conversations.set(conversationId, { ...known, title: e.data.title });
    }
    const open = this.open;
    if (open && open.info.conversationId === conversationId) {
      if (open.pending) open.pending.push(f);
      else this.showInOpen(open, f);
      return;
    }
    if (e.type !== 'message.sent' || e.actor === this.me) return;
    if (this.replaying || !this.started) {
      this.missed.set(conversationId, (this.missed.get(conversationId) ?? 0) + 1);
      return;
    }
    this.print(r.notice(this.conversations.get(conversationId), conversationId, e.actor, e.data.text || '(attachment)'));
  }

  private showInOpen(open: OpenConversation, f: EventFrame): void {
    if (f.seq <= open.covered) return;
    open.covered = f.seq;
    const r = this.o.renderer;
    const e = f.event;
    const who = e.actor === this.me ? 'you' : e.actor;
    switch (e.type) {
      case 'message.sent': {
        this.stopTyping(open, e.actor);
        open.lastMessageSeq = f.seq;
        this.printLines(
          r.message({
            seq: f.seq,
            senderId: e.actor,
            text: e.data.text,
            at: e.at,
            status: 'active',
            replyTo: e.data.replyTo ? { seq: e.data.replyTo.seq } : null,
            attachments: e.data.attachments ?? [],
          }),
        );
        return;
      }
      case 'message.edited':
        return this.print(r.info(`${who} edited a message: ${e.data.text}`));
      case 'message.recalled':
        return this.print(r.info(`${who} recalled a message`));
      case 'message.deleted':
        return this.print(r.info(`${who} deleted a message`));
      case 'reaction.added':
        return this.print(r.info(`${who} reacted ${e.data.emoji}`));
      case 'members.added':
        return this.print(r.info(e.data.self ? `${who} joined` : `${who} added ${e.data.members.map((m) => m.userId).join(', ')}`));
      case 'member.removed':
        return this.print(r.info(e.data.self ? `${e.data.userId} left` : `${who} removed ${e.data.userId}`));
      case 'conversation.renamed':
        open.info = { ...open.info, title: e.data.title };
        this.updatePrompt();
        return this.print(r.info(`${who} renamed the conversation to ${e.data.title}`));
      case 'direct.block_changed':
        return this.print(r.info(e.data.blocked ? 'this conversation is blocked: no messages can be sent' : 'this conversation is unblocked'));
      default:
        return; // other (and future) event types: nothing to show
    }
  }

  private onSynced(f: SyncedFrame): void {
    this.replaying = false;
    const r = this.o.renderer;
    if (!this.started) return; // start() reports the first sync
    if (this.lostConnection) this.print(r.info('reconnected'));
    this.lostConnection = false;
    this.printMissed();
    if (f.status === 'resync_needed' && f.resync && f.resync.reason !== 'no_position') {
      const open = this.open;
      const affected = open && (f.resync.conversations === null || f.resync.conversations.includes(open.info.conversationId));
      this.print(r.info(`some events could not be replayed (${f.resync.reason})${affected ? '; reloading the open conversation' : ''}`));
      if (open && affected)
        void this.enqueue(() => (this.open === open ? this.openConversation(open.info.conversationId) : Promise.resolve())).catch(() => undefined);
    }
  }

  private onState(state: ConnectionState): void {
    const r = this.o.renderer;
    if (state === 'syncing') this.replaying = true;
    if (state === 'offline') {
      this.replaying = false;
      if (this.started && !this.lostConnection && !this.quitting) {
        this.lostConnection = true;
        this.print(r.info('connection lost; reconnecting…'));
      } else if (!this.started && !this.warnedOffline) {
        this.warnedOffline = true;
        this.print(r.info('cannot reach the server yet; retrying (Ctrl-C quits)'));
      }
    }
  }

  private onTyping(f: TypingFrame): void {
    const open = this.open;
    if (!open || f.conversationId !== open.info.conversationId || f.userId === this.me || open.pending) return;
    const shown = open.typing.get(f.userId);
    if (shown) clearTimeout(shown.timer);
    else this.print(this.o.renderer.typing(f.userId));
    const timer = setTimeout(() => open.typing.delete(f.userId), Math.max(0, f.expiresAt - this.now()));
    timer.unref?.();
    open.typing.set(f.userId, { expiresAt: f.expiresAt, timer });
  }

  private onReceipt(f: ReceiptFrame): void {
    const open = this.open;
    if (!open || f.kind !== 'read' || f.conversationId !== open.info.conversationId || f.userId === this.me) return;
    if (f.seq <= (open.readBy.get(f.userId) ?? 0)) return;
    open.readBy.set(f.userId, f.seq);
    if (open.lastMessageSeq !== null && f.seq >= open.lastMessageSeq) this.print(this.o.renderer.seenBy([f.userId]));
  }

  // ---- helpers -------------------------------------------------------------

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Reads that must include everything this device has already seen live
   * pass its position as `after` (the server waits for the read model). If
   * the read model cannot catch up in time, read without it.
   */
  private async withAfter<T>(read: (after: number | undefined) => Promise<T>, floor = 0): Promise<T> {
    const seen = this.o.client.state === 'live' ? positionSeq(this.o.client.position) : 0;
    const after = Math.max(seen, floor);
    try {
      return await read(after > 0 ? after : undefined);
    } catch (err) {
      if (err instanceof ParleyError && err.code === 'timeout' && after > 0) return read(undefined);
      throw err;
    }
  }

  private async refreshConversations(): Promise<void> {
    const res = await this.o.http.conversations();
    for (const c of res.conversations) this.conversations.set(c.conversationId, c);
  }

  private learn(conversationId: string, data: { kind: ConversationInfo['kind']; title: string | null; members: { userId: string }[] }): void {
    if (this.conversations.has(conversationId)) return;
    const peer = data.kind === 'direct' ? (data.members.find((m) => m.userId !== this.me)?.userId ?? null) : null;
    this.conversations.set(conversationId, { conversationId, kind: data.kind, title: data.title, peer, memberCount: data.members.length });
  }

  private describeConversation(id: string): string {
    const c = this.conversations.get(id);
    return c ? this.o.renderer.title(c) : id;
  }

  private printMissed(): void {
    if (this.missed.size === 0) return;
    const parts = [...this.missed].map(([id, n]) => `${n} in ${this.describeConversation(id)}`);
    const total = [...this.missed.values()].reduce((a, b) => a + b, 0);
    this.missed.clear();
    this.print(this.o.renderer.info(`while you were away: ${total} new message${total === 1 ? '' : 's'} (${parts.join(', ')})`));
  }

  private stopTyping(open: OpenConversation, userId: string): void {
    const t = open.typing.get(userId);
    if (!t) return;
    clearTimeout(t.timer);
    open.typing.delete(userId);
  }

  private clearTyping(): void {
    if (!this.open) return;
    for (const t of this.open.typing.values()) clearTimeout(t.timer);
    this.open.typing.clear();
  }

  private updatePrompt(): void {
    this.o.screen.setPrompt(this.open ? `${this.o.renderer.title(this.open.info)}> ` : '> ');
  }

  private print(line: string): void {
    this.o.screen.line(line);
  }

  private printLines(lines: string[]): void {
    for (const l of lines) this.o.screen.line(l);
  }
}

function fromView(m: MessageView): MessageLike {
  return {
    seq: m.seq,
    senderId: m.senderId,
    text: m.text,
    at: m.at,
    status: m.status,
    editedAt: m.editedAt,
    replyTo: m.replyTo,
    attachments: m.attachments,
    reactions: m.reactions,
  };
}

function kindOf(conversationId: string): ConversationInfo['kind'] {
  return conversationId.startsWith('d_') ? 'direct' : conversationId.startsWith('c_') ? 'channel' : 'group';
}

function describe(err: unknown): string {
  if (err instanceof ParleyError) {
    if (err.code === 'not_member') return 'you are not a member of that conversation (or it does not exist)';
    if (err.code === 'unavailable' && err.message === 'not connected') return 'not connected to the server right now; try again in a moment';
    return `${err.message} [${err.code}]`;
  }
  return err instanceof Error ? err.message : String(err);
}
