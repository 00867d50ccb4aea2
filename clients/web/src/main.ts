import type {
  AttachmentRef,
  CommandResult,
  ConversationSummary,
  EventFrame,
  MessageView,
  PresenceResponse,
  ReceiptFrame,
  SyncedFrame,
  TypingFrame,
} from '../../../contracts/index.js';
import { decodePosition } from '../../../contracts/position-codec.js';
import { keyValueStorage, ParleyClient, ParleyError, type ConnectionState } from '../../sdk/index.js';
import { Api, ApiError, devToken } from './api.js';
import { byId, formatTime, h } from './dom.js';
import { newClientMsgId, Outbox, type OutboxItem } from './outbox.js';

/**
 * The Parley web client: plain DOM on the SDK. The SDK keeps the connection
 * (reconnect, resume from the stored position, re-sending unacknowledged
 * messages under their client ids); this file keeps the screen in step with
 * the events it delivers and with the HTTP API for history and lists.
 */

interface Session {
  userId: string;
  token: string;
  /** Signed in with a development token: a fresh one is minted for every connection. */
  dev: boolean;
}

type Msg = Omit<MessageView, 'reactions'> & { reactions: { emoji: string; count: number; mine: boolean }[] };

interface Conv {
  summary: ConversationSummary | null;
  messages: Map<string, Msg>;
  /** Cursor of the next older page: undefined before the first load, null at the first message. */
  nextCursor: string | null | undefined;
  loading: boolean;
  /** Read markers of the other members (receipt frames and the receipts endpoint). */
  reads: Map<string, number>;
  /**
   * Members this page knows of: from the creation and membership events it has seen and the senders of loaded
   * messages. The HTTP API has no member list, so for a channel joined later this is a partial view.
   */
  members: Set<string>;
}

const SESSION_KEY = 'parley.session';
const QUICK_REACTIONS = ['👍', '❤️', '😂'];

const ui = {
  connection: byId('connection'),
  me: byId('me'),
  signOut: byId<HTMLButtonElement>('sign-out'),
  signinView: byId('signin-view'),
  signinForm: byId<HTMLFormElement>('signin-form'),
  signinUser: byId<HTMLInputElement>('signin-user'),
  signinToken: byId<HTMLInputElement>('signin-token'),
  signinError: byId('signin-error'),
  appView: byId('app-view'),
  newButton: byId<HTMLButtonElement>('new-conversation'),
  newForm: byId<HTMLFormElement>('new-conversation-form'),
  newMembers: byId<HTMLInputElement>('new-members'),
  newTitle: byId<HTMLInputElement>('new-title'),
  newOpen: byId<HTMLInputElement>('new-open'),
  newAdminsPost: byId<HTMLInputElement>('new-admins-post'),
  joinForm: byId<HTMLFormElement>('join-form'),
  joinId: byId<HTMLInputElement>('join-id'),
  joinError: byId('join-error'),
  rename: byId<HTMLButtonElement>('rename'),
  leave: byId<HTMLButtonElement>('leave'),
  renameForm: byId<HTMLFormElement>('rename-form'),
  renameTitle: byId<HTMLInputElement>('rename-title'),
  membersPanel: byId('members-panel'),
  membersList: byId<HTMLUListElement>('members'),
  membersCount: byId('members-count'),
  addMembersForm: byId<HTMLFormElement>('add-members-form'),
  addMembersInput: byId<HTMLInputElement>('add-members-input'),
  readOnly: byId('read-only'),
  send: byId<HTMLButtonElement>('send'),
  newError: byId('new-error'),
  showArchived: byId<HTMLInputElement>('show-archived'),
  searchForm: byId<HTMLFormElement>('search-form'),
  searchInput: byId<HTMLInputElement>('search-input'),
  searchResults: byId<HTMLUListElement>('search-results'),
  list: byId<HTMLUListElement>('conversation-list'),
  conversation: byId('conversation'),
  back: byId<HTMLButtonElement>('back'),
  title: byId('conversation-title'),
  info: byId('conversation-info'),
  actions: byId('conversation-actions'),
  mute: byId<HTMLButtonElement>('mute'),
  pin: byId<HTMLButtonElement>('pin'),
  archive: byId<HTMLButtonElement>('archive'),
  block: byId<HTMLButtonElement>('block'),
  messages: byId<HTMLUListElement>('messages'),
  typing: byId('typing'),
  notice: byId('notice'),
  composer: byId<HTMLFormElement>('composer'),
  composerContext: byId('composer-context'),
  composerContextText: byId('composer-context-text'),
  composerCancel: byId<HTMLButtonElement>('composer-cancel'),
  pendingAttachments: byId('pending-attachments'),
  input: byId<HTMLTextAreaElement>('message-input'),
  attach: byId<HTMLInputElement>('attach-input'),
};

let session: Session | null = null;
let api: Api | null = null;
let client: ParleyClient | null = null;
let outbox: Outbox | null = null;
const convs = new Map<string, Conv>();
let openId: string | null = null;
let everLive = false;
let continuity = '';
/** Highest stream sequence delivered: HTTP reads pass it as `after`, so they include everything already shown. */
let lastSeq = 0;
let listReload: ReturnType<typeof setTimeout> | null = null;
const typingUntil = new Map<string, { userId: string; until: number }[]>();
const blocked = new Set<string>();
let composing: { mode: 'reply' | 'edit'; message: Msg } | null = null;
let attachments: AttachmentRef[] = [];
const previews = new Map<string, Promise<string>>();

// ---- connection state ----------------------------------------------------

function showConnection(state: ConnectionState | 'signed-out'): void {
  const waiting = outbox?.all().length ?? 0;
  const queued = waiting ? ` (${waiting} message${waiting === 1 ? '' : 's'} waiting to send)` : '';
  const text: Record<string, string> = {
    'signed-out': 'Signed out',
    connecting: everLive ? `Reconnecting…${queued}` : 'Connecting…',
    syncing: everLive ? `Resuming…${queued}` : 'Syncing…',
    live: `Online: ${continuity || 'connected'}`,
    offline: `Offline${queued}: retrying`,
    closed: 'Disconnected',
  };
  ui.connection.textContent = text[state] ?? state;
  ui.connection.dataset.state = state;
}

/** What a resume answered, in words: the continuity a person needs to trust the screen. */
function describeSynced(frame: SyncedFrame): { text: string; kind: string } {
  if (frame.status === 'complete') {
    if (frame.replayed === 0) return { text: 'caught up', kind: 'caught-up' };
    return { text: `gap refilled (${frame.replayed} missed event${frame.replayed === 1 ? '' : 's'} replayed)`, kind: 'gap-refilled' };
  }
  const reason = frame.resync?.reason ?? 'unknown';
  if (reason === 'no_position') return { text: 'loaded', kind: 'loaded' };
  return { text: `resynced (${reason.replaceAll('_', ' ')})`, kind: 'resync' };
}

// ---- sign in -------------------------------------------------------------

function jwtClaims(token: string): { sub?: unknown; exp?: unknown } {
  try {
    return JSON.parse(atob(token.split('.')[1]!.replaceAll('-', '+').replaceAll('_', '/')));
  } catch {
    return {};
  }
}

function jwtSubject(token: string): string | null {
  const { sub } = jwtClaims(token);
  return typeof sub === 'string' ? sub : null;
}

/** True once a token's `exp` (seconds) has passed. The gateway refuses it at the upgrade with an HTTP 401 a page
 * never sees (the browser reports a bare 1006), so without this the page would retry an expired token forever. */
function jwtExpired(token: string): boolean {
  const { exp } = jwtClaims(token);
  return typeof exp === 'number' && exp * 1000 <= Date.now();
}

ui.signinForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void signIn();
});

async function signIn(): Promise<void> {
  ui.signinError.textContent = '';
  const pasted = ui.signinToken.value.trim();
  const userId = ui.signinUser.value.trim() || (pasted ? (jwtSubject(pasted) ?? '') : '');
  if (!userId && !pasted) {
    ui.signinError.textContent = 'Enter a user id.';
    ui.signinUser.focus();
    return;
  }
  try {
    const next: Session = pasted
      ? { userId: jwtSubject(pasted) ?? userId, token: pasted, dev: false }
      : { userId, token: (await devToken(userId)).token, dev: true };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(next));
    start(next);
  } catch (err) {
    ui.signinError.textContent =
      err instanceof ApiError && err.status === 404
        ? 'This server does not issue development tokens: paste a token.'
        : `Sign-in failed: ${(err as Error).message}`;
  }
}

ui.signOut.addEventListener('click', () => signOut());

function signOut(reason = ''): void {
  client?.close();
  client = null;
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
  convs.clear();
  openId = null;
  ui.appView.hidden = true;
  ui.signinView.hidden = false;
  ui.signOut.hidden = true;
  ui.me.textContent = '';
  showConnection('signed-out');
  ui.signinError.textContent = reason;
  ui.signinUser.focus();
}

function start(next: Session): void {
  session = next;
  api = new Api(next.token);
  outbox = new Outbox(localStorage, `parley.outbox.${next.userId}`);
  ui.signinView.hidden = true;
  ui.appView.hidden = false;
  ui.signOut.hidden = false;
  ui.me.textContent = next.userId;
  everLive = false;
  const c = new ParleyClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`,
    token: async () => {
      // Development tokens are minted fresh for every connection, so a long offline spell never ends in an expired one.
      if (session?.dev) {
        session.token = (await devToken(session.userId)).token;
        api = new Api(session.token);
      }
      if (jwtExpired(session!.token)) {
        // A pasted token cannot be renewed here: back to the sign-in form, saying why.
        queueMicrotask(() => signOut('Your token has expired: paste a fresh one.'));
        throw new Error('the token has expired');
      }
      return session!.token;
    },
    storage: keyValueStorage(localStorage, `parley.position.${next.userId}`),
    backoff: { baseMs: 250, maxMs: 5000 },
  });
  client = c;
  c.on('state', (s) => {
    showConnection(s);
    ui.conversation.dataset.connection = s;
  });
  c.on('event', onEvent);
  c.on('synced', onSynced);
  c.on('typing', onTyping);
  c.on('receipt', onReceipt);
  c.on('error', (err) => {
    if (c.state === 'closed') ui.connection.textContent = `Disconnected: ${err.message}`;
  });
  showConnection('connecting');
  c.connect().catch(() => undefined);
  void loadList();
  // Keyboard users land on the first thing to do after signing in.
  ui.newButton.focus();
}

window.addEventListener('online', () => client?.reconnectNow());

// ---- events --------------------------------------------------------------

function conv(id: string): Conv {
  let c = convs.get(id);
  if (!c) convs.set(id, (c = { summary: null, messages: new Map(), nextCursor: undefined, loading: false, reads: new Map(), members: new Set() }));
  return c;
}

function onSynced(frame: SyncedFrame): void {
  const { text, kind } = describeSynced(frame);
  continuity = text;
  ui.connection.dataset.continuity = kind;
  const wasLive = everLive;
  everLive = true;
  showConnection('live');
  flushOutbox(wasLive);
  if (frame.status === 'resync_needed') {
    // The position jumped past events never delivered (or into a new log): HTTP reads wait for the read model to reach it.
    lastSeq = Math.max(0, ...(decodePosition(frame.position) ?? []).map((p) => p.seq));
    // The replay could not vouch for continuity: refetch what the server names (everything when null).
    const ids = frame.resync?.conversations ?? [...convs.keys()];
    for (const id of ids) {
      const c = convs.get(id);
      if (c && c.nextCursor !== undefined) {
        c.nextCursor = undefined;
        // What the refetch shows on the open conversation is read, as live messages are.
        if (id === openId) void loadHistory(id, true).then(markReadIfVisible);
      }
    }
    scheduleListReload();
  }
  markReadIfVisible();
}

function onEvent(frame: EventFrame): void {
  lastSeq = Math.max(lastSeq, frame.seq);
  const ev = frame.event;
  if (frame.entity.kind === 'user') {
    if (ev.type === 'user.blocked') blocked.add(ev.data.userId);
    if (ev.type === 'user.unblocked') blocked.delete(ev.data.userId);
    if (ev.type === 'read.marked' && convs.get(ev.data.conversationId)?.summary) {
      const s = convs.get(ev.data.conversationId)!.summary!;
      if (ev.data.seq >= (s.lastMessage?.seq ?? 0)) {
        s.unread = 0;
        s.mentions = 0;
      }
      s.readSeq = Math.max(s.readSeq, ev.data.seq);
      renderList();
    }
    if (ev.type !== 'read.marked' && ev.type !== 'delivered.marked') scheduleListReload();
    if (openId) renderHeader();
    return;
  }
  const id = frame.entity.id;
  const c = conv(id);
  const me = session?.userId;
  switch (ev.type) {
    case 'message.sent': {
      const m: Msg = {
        conversationId: id,
        messageId: ev.data.messageId,
        seq: frame.seq,
        senderId: ev.actor,
        clientMsgId: ev.data.clientMsgId,
        text: ev.data.text,
        at: ev.at,
        status: 'active',
        editedAt: null,
        editCount: 0,
        replyTo: ev.data.replyTo
          ? {
              messageId: ev.data.replyTo.messageId,
              seq: ev.data.replyTo.seq,
              senderId: c.messages.get(ev.data.replyTo.messageId)?.senderId ?? null,
              preview: previewOf(c.messages.get(ev.data.replyTo.messageId)),
            }
          : null,
        mentions: ev.data.mentions ?? [],
        attachments: ev.data.attachments ?? [],
        reactions: [],
      };
      if (!c.messages.has(m.messageId)) c.messages.set(m.messageId, m);
      c.members.add(ev.actor);
      if (ev.actor === me) outbox?.remove(ev.data.clientMsgId);
      if (c.summary) {
        c.summary.lastActivityAt = ev.at;
        c.summary.lastMessage = { ...m, reactions: [] };
        if (ev.actor !== me && !(id === openId && document.visibilityState === 'visible')) {
          c.summary.unread++;
          if (me && m.mentions.includes(me)) c.summary.mentions++;
        }
      } else scheduleListReload();
      // A message ends that member's typing.
      typingUntil.set(
        id,
        (typingUntil.get(id) ?? []).filter((t) => t.userId !== ev.actor),
      );
      break;
    }
    case 'message.edited': {
      const m = c.messages.get(ev.data.target.messageId);
      if (m) Object.assign(m, { text: ev.data.text, editedAt: ev.at, editCount: m.editCount + 1, mentions: ev.data.mentions ?? [] });
      break;
    }
    case 'message.recalled':
    case 'message.deleted': {
      const m = c.messages.get(ev.data.target.messageId);
      if (m) Object.assign(m, { text: '', status: ev.type === 'message.recalled' ? 'recalled' : 'deleted', attachments: [], reactions: [] });
      break;
    }
    case 'reaction.added':
    case 'reaction.removed': {
      const m = c.messages.get(ev.data.target.messageId);
      if (!m) break;
      const add = ev.type === 'reaction.added';
      let r = m.reactions.find((x) => x.emoji === ev.data.emoji);
      if (!r && add) m.reactions.push((r = { emoji: ev.data.emoji, count: 0, mine: false }));
      if (!r) break;
      r.count += add ? 1 : -1;
      if (ev.actor === me) r.mine = add;
      m.reactions = m.reactions.filter((x) => x.count > 0);
      break;
    }
    case 'conversation.created':
    case 'members.added':
      for (const m of ev.data.members) c.members.add(m.userId);
      scheduleListReload();
      if (id === openId) void loadPresence(id);
      break;
    case 'member.removed':
      c.members.delete(ev.data.userId);
      scheduleListReload();
      if (id === openId) renderMembers();
      break;
    default:
      // Titles, policies, roles: the list (and header) are refetched.
      scheduleListReload();
  }
  renderList();
  if (id === openId) {
    renderMessages();
    markReadIfVisible();
  }
}

function previewOf(m: Msg | undefined): string | null {
  return m ? m.text.slice(0, 80) : null;
}

function onTyping(frame: TypingFrame): void {
  const list = (typingUntil.get(frame.conversationId) ?? []).filter((t) => t.userId !== frame.userId);
  list.push({ userId: frame.userId, until: frame.expiresAt });
  typingUntil.set(frame.conversationId, list);
  renderTyping();
  setTimeout(renderTyping, Math.max(0, frame.expiresAt - Date.now()) + 50);
}

function onReceipt(frame: ReceiptFrame): void {
  if (frame.kind !== 'read') return;
  const c = conv(frame.conversationId);
  c.reads.set(frame.userId, Math.max(c.reads.get(frame.userId) ?? 0, frame.seq));
  if (frame.conversationId === openId) renderMessages();
}

// ---- sending (offline-safe) ----------------------------------------------

/** Sends an outbox item through the SDK, which keeps it (same client id) until the server acknowledges it. */
function dispatch(item: OutboxItem): void {
  client
    ?.send(item.conversationId, item.text, {
      clientMsgId: item.clientMsgId,
      ...(item.replyTo ? { replyTo: item.replyTo } : {}),
      ...(item.attachments?.length ? { attachments: item.attachments } : {}),
    })
    .then(() => outbox?.remove(item.clientMsgId))
    .catch((err: Error) => {
      // Refused for good (not a member, blocked, too long): say so instead of retrying forever.
      if (err instanceof ParleyError && !err.retryable) {
        outbox?.remove(item.clientMsgId);
        announce(`Message not sent: ${err.message}`);
      }
    })
    .finally(() => {
      if (item.conversationId === openId) renderMessages();
      if (client) showConnection(client.state);
    });
}

const dispatched = new Set<string>();

/** After a reload the SDK's queue is empty: messages still in the outbox are handed to it once, under their own ids. */
function flushOutbox(wasLive: boolean): void {
  if (wasLive) return;
  for (const item of outbox?.all() ?? []) {
    if (dispatched.has(item.clientMsgId)) continue;
    dispatched.add(item.clientMsgId);
    dispatch(item);
  }
}

ui.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  submitComposer();
});

ui.input.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    submitComposer();
  }
  if (ev.key === 'Escape' && composing) endComposing();
});

/** Typing signals go out at most every TYPING_EVERY_MS (the server drops more), with a trailing one for typing that continues. */
const TYPING_EVERY_MS = 2100;
let lastTypingSent = 0;
let typingTimer: ReturnType<typeof setTimeout> | null = null;
function signalTyping(): void {
  if (!openId || !client || !ui.input.value.trim() || composing?.mode === 'edit') return;
  const wait = lastTypingSent + TYPING_EVERY_MS - Date.now();
  if (wait <= 0) {
    lastTypingSent = Date.now();
    client.typing(openId);
  } else
    typingTimer ??= setTimeout(() => {
      typingTimer = null;
      signalTyping();
    }, wait);
}
ui.input.addEventListener('input', signalTyping);

function submitComposer(): void {
  const text = ui.input.value.trim();
  if (!openId || !client || !outbox) return;
  if (composing?.mode === 'edit') {
    const target = composing.message;
    if (text && text !== target.text) void command({ t: 'edit', conversationId: openId, messageId: target.messageId, text });
    endComposing();
    ui.input.value = '';
    return;
  }
  if (!text && attachments.length === 0) return;
  const item: OutboxItem = {
    clientMsgId: newClientMsgId(),
    conversationId: openId,
    // An attachment-only message still needs text: its file name stands in.
    text: text || attachments.map((a) => a.name).join(', '),
    ...(composing?.mode === 'reply' ? { replyTo: composing.message.messageId } : {}),
    ...(attachments.length ? { attachments: attachments.map((a) => a.id) } : {}),
    at: Date.now(),
  };
  outbox.add(item);
  dispatched.add(item.clientMsgId);
  dispatch(item);
  ui.input.value = '';
  attachments = [];
  renderPendingAttachments();
  endComposing();
  renderMessages(true);
  showConnection(client.state);
}

/** A command through the SDK: its result, or null once the failure has been announced. */
async function command(frame: Parameters<ParleyClient['command']>[0], say: (text: string) => void = announce): Promise<CommandResult | null> {
  if (!client) return null;
  try {
    const result = await client.command(frame);
    lastSeq = Math.max(lastSeq, result.seq);
    return result;
  } catch (err) {
    say(err instanceof ParleyError && err.code === 'unavailable' ? 'Not connected: try again when online.' : `Failed: ${(err as Error).message}`);
    return null;
  }
}

/** A failure the user should hear about (role alert), cleared after a while. */
function announce(text: string): void {
  ui.notice.textContent = text;
  setTimeout(() => {
    if (ui.notice.textContent === text) ui.notice.textContent = '';
  }, 8000);
}

function startComposing(mode: 'reply' | 'edit', message: Msg): void {
  composing = { mode, message };
  ui.composerContext.hidden = false;
  ui.composerContextText.textContent = mode === 'reply' ? `Replying to ${message.senderId}: ${message.text.slice(0, 60)}` : 'Editing your message';
  if (mode === 'edit') ui.input.value = message.text;
  ui.input.focus();
}

function endComposing(): void {
  composing = null;
  ui.composerContext.hidden = true;
}

ui.composerCancel.addEventListener('click', () => {
  if (composing?.mode === 'edit') ui.input.value = '';
  endComposing();
  ui.input.focus();
});

ui.attach.addEventListener('change', async () => {
  const files = [...(ui.attach.files ?? [])];
  ui.attach.value = '';
  for (const file of files) {
    try {
      attachments.push(await api!.upload(file));
    } catch (err) {
      announce(`Upload failed: ${(err as Error).message}`);
    }
  }
  renderPendingAttachments();
});

function renderPendingAttachments(): void {
  ui.pendingAttachments.replaceChildren(
    ...attachments.map((a) =>
      h(
        'span',
        { class: 'chip' },
        a.name,
        h('button', {
          type: 'button',
          'aria-label': `Remove attachment ${a.name}`,
          text: '×',
          onclick: () => {
            attachments = attachments.filter((x) => x !== a);
            renderPendingAttachments();
          },
        }),
      ),
    ),
  );
}

// ---- conversation list -----------------------------------------------------

async function loadList(): Promise<void> {
  if (!api) return;
  try {
    const archived = ui.showArchived.checked;
    const { conversations } = await api.conversations(archived, lastSeq || undefined);
    const seen = new Set<string>();
    for (const s of conversations) {
      // Reads only move forward: an answer read before this page's latest mark_read reached the read model keeps it.
      const before = conv(s.conversationId).summary;
      if (before && before.readSeq > s.readSeq) {
        s.readSeq = before.readSeq;
        if (s.readSeq >= (s.lastMessage?.seq ?? 0)) Object.assign(s, { unread: 0, mentions: 0 });
      }
      conv(s.conversationId).summary = s;
      seen.add(s.conversationId);
    }
    // Conversations no longer listed (left, or moved between archived and not) keep their messages but leave the list.
    for (const [id, c] of convs) if (!seen.has(id)) c.summary = null;
    renderList();
    if (openId) renderHeader();
  } catch (err) {
    // The read model had not reached the events this page has seen yet (a busy projector answers 504), or a
    // dependency is briefly down (503): ask again shortly rather than leave the list without what just arrived.
    if (err instanceof ApiError && (err.status === 504 || err.status === 503)) scheduleListReload(1000);
    else if (!(err instanceof TypeError)) announce(`Could not load conversations: ${(err as Error).message}`);
  }
}

function scheduleListReload(delayMs = 150): void {
  if (listReload) return;
  listReload = setTimeout(() => {
    listReload = null;
    void loadList();
  }, delayMs);
}

ui.showArchived.addEventListener('change', () => void loadList());

function titleOf(s: ConversationSummary): string {
  if (s.kind === 'direct') return s.peer ?? 'Direct conversation';
  return s.title ?? s.conversationId;
}

function renderList(): void {
  const items = [...convs.values()]
    .map((c) => c.summary)
    .filter((s): s is ConversationSummary => s !== null)
    .sort((a, b) => Number(b.pinned) - Number(a.pinned) || b.lastActivityAt - a.lastActivityAt);
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.conversation : undefined;
  ui.list.replaceChildren(
    ...items.map((s) => {
      const muted = s.mutedUntil !== null && s.mutedUntil > Date.now();
      const button = h(
        'button',
        {
          type: 'button',
          class: 'conversation-item',
          'data-conversation': s.conversationId,
          'aria-current': s.conversationId === openId ? 'true' : null,
          onclick: () => void openConversation(s.conversationId),
        },
        h('span', { class: 'conv-title' }, `${s.kind === 'channel' ? '# ' : ''}${titleOf(s)}`),
        s.pinned ? h('span', { class: 'tag', text: 'pinned' }) : null,
        muted ? h('span', { class: 'tag', text: 'muted' }) : null,
        s.unread > 0 ? h('span', { class: 'badge', 'aria-label': `${s.unread} unread`, text: String(s.unread) }) : null,
        s.mentions > 0
          ? h('span', { class: 'badge mention', 'aria-label': `${s.mentions} mention${s.mentions === 1 ? '' : 's'}`, text: `@${s.mentions}` })
          : null,
        h('span', {
          class: 'conv-last',
          text: s.lastMessage ? `${s.lastMessage.senderId}: ${s.lastMessage.text || '(removed)'}` : `${s.kind}, ${s.memberCount} members`,
        }),
      );
      return h('li', {}, button);
    }),
  );
  if (focused) (ui.list.querySelector(`[data-conversation="${CSS.escape(focused)}"]`) as HTMLElement | null)?.focus();
}

// ---- new conversation ----------------------------------------------------------

ui.newButton.addEventListener('click', () => {
  ui.newForm.hidden = !ui.newForm.hidden;
  ui.newButton.setAttribute('aria-expanded', String(!ui.newForm.hidden));
  if (!ui.newForm.hidden) ui.newMembers.focus();
});

ui.newForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  ui.newError.textContent = '';
  const members = ui.newMembers.value
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m && m !== session?.userId);
  const kind = (new FormData(ui.newForm).get('kind') as string) === 'channel' ? 'channel' : members.length === 1 ? 'direct' : 'group';
  const title = ui.newTitle.value.trim() || (kind === 'direct' ? '' : [session!.userId, ...members].join(', ').slice(0, 100));
  if (kind !== 'channel' && members.length === 0) {
    ui.newError.textContent = 'Enter at least one member id.';
    ui.newMembers.focus();
    return;
  }
  try {
    const created = await api!.create(
      kind === 'direct'
        ? { kind, peer: members[0]! }
        : kind === 'channel'
          ? { kind, title, members, joinPolicy: ui.newOpen.checked ? 'open' : 'invite', postPolicy: ui.newAdminsPost.checked ? 'admins' : 'everyone' }
          : { kind, title, members },
    );
    lastSeq = Math.max(lastSeq, created.seq);
    ui.newForm.reset();
    ui.newForm.hidden = true;
    ui.newButton.setAttribute('aria-expanded', 'false');
    await loadList();
    await openConversation(created.conversationId);
  } catch (err) {
    ui.newError.textContent = `Could not create: ${(err as Error).message}`;
  }
});

// ---- search ----------------------------------------------------------------------

ui.searchForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const q = ui.searchInput.value.trim();
  if (!q) {
    ui.searchResults.hidden = true;
    return;
  }
  try {
    const { messages } = await api!.search(q);
    ui.searchResults.hidden = false;
    ui.searchResults.replaceChildren(
      ...(messages.length
        ? messages.map((m) =>
            h(
              'li',
              {},
              h(
                'button',
                { type: 'button', class: 'search-hit', onclick: () => void openConversation(m.conversationId) },
                h('strong', { text: m.senderId }),
                ` ${m.text}`,
                h('small', { text: ` ${formatTime(m.at)}` }),
              ),
            ),
          )
        : [h('li', { text: 'No matches.' })]),
    );
  } catch (err) {
    announce(`Search failed: ${(err as Error).message}`);
  }
});

// ---- open conversation -------------------------------------------------------------

async function openConversation(id: string): Promise<void> {
  if (openId !== id) presenceOf = new Map();
  openId = id;
  ui.renameForm.hidden = true;
  endComposing();
  document.body.classList.add('has-open');
  ui.composer.hidden = false;
  renderList();
  renderHeader();
  renderMessages(true);
  const c = conv(id);
  if (c.nextCursor === undefined) await loadHistory(id, true);
  markReadIfVisible();
  void loadReceipts(id);
  renderMembers();
  void loadPresence(id);
  ui.input.focus();
}

ui.back.addEventListener('click', () => {
  document.body.classList.remove('has-open');
  (ui.list.querySelector('[aria-current="true"]') as HTMLElement | null)?.focus();
});

async function loadHistory(id: string, latest: boolean): Promise<void> {
  const c = conv(id);
  if (c.loading || !api) return;
  if (!latest && !c.nextCursor) return;
  c.loading = true;
  try {
    const fresh = latest && c.nextCursor === undefined;
    const page = await api.history(id, latest ? null : c.nextCursor, 50, latest ? lastSeq || undefined : undefined);
    if (fresh && page.messages.length) {
      // A first or refetched newest page: what the page held from before it may lie across a gap (a resync), so it
      // goes, and loads again on scroll, rather than show a hole.
      const oldest = Math.min(...page.messages.map((m) => m.seq));
      for (const [key, m] of c.messages) if (m.seq < oldest) c.messages.delete(key);
    }
    for (const m of page.messages) c.members.add(m.senderId);
    for (const m of page.messages) c.messages.set(m.messageId, { ...m, reactions: m.reactions.map((r) => ({ emoji: r.emoji, count: r.count, mine: r.mine })) });
    if (latest) {
      if (c.nextCursor === undefined || c.nextCursor === null) c.nextCursor = page.nextCursor;
    } else c.nextCursor = page.nextCursor;
  } catch (err) {
    announce(`Could not load messages: ${(err as Error).message}`);
  } finally {
    c.loading = false;
  }
  if (id === openId) {
    if (latest) renderMessages(true);
    else renderMessagesKeepingPosition();
  }
}

/** Older pages load when the list is scrolled near its top. */
ui.messages.addEventListener('scroll', () => {
  if (openId && ui.messages.scrollTop < 80) void loadHistory(openId, false);
});

function renderMessagesKeepingPosition(): void {
  const fromBottom = ui.messages.scrollHeight - ui.messages.scrollTop;
  renderMessages();
  ui.messages.scrollTop = ui.messages.scrollHeight - fromBottom;
}

function renderHeader(): void {
  const s = openId ? convs.get(openId)?.summary : null;
  ui.actions.hidden = !s;
  if (!openId) return;
  if (!s) {
    ui.title.textContent = openId;
    ui.info.textContent = '';
    ui.membersPanel.hidden = true;
    return;
  }
  ui.title.textContent = `${s.kind === 'channel' ? '# ' : ''}${titleOf(s)}`;
  const muted = s.mutedUntil !== null && s.mutedUntil > Date.now();
  setToggle(ui.mute, muted, 'Mute', 'Unmute');
  setToggle(ui.pin, s.pinned, 'Pin', 'Unpin');
  setToggle(ui.archive, s.archived, 'Archive', 'Unarchive');
  ui.block.hidden = s.kind !== 'direct';
  if (s.peer) setToggle(ui.block, blocked.has(s.peer), 'Block', 'Unblock');
  const manager = s.role === 'owner' || s.role === 'admin';
  ui.leave.hidden = s.kind === 'direct';
  ui.rename.hidden = s.kind === 'direct' || !manager;
  if (ui.rename.hidden) ui.renameForm.hidden = true;
  if (s.kind !== 'direct') {
    // The id is what others need to join an open channel.
    const policy =
      s.kind === 'channel'
        ? `, ${s.joinPolicy === 'open' ? 'open' : 'invite only'}${s.postPolicy === 'admins' ? ', admins post' : ''}, id ${s.conversationId}`
        : '';
    ui.info.textContent = `${s.kind}, ${s.memberCount} members, you are ${s.role}${policy}`;
  }
  // The posting permission: a channel where only admins post is read-only for its members.
  const readOnly = s.kind === 'channel' && s.postPolicy === 'admins' && !manager;
  ui.input.disabled = readOnly;
  ui.send.disabled = readOnly;
  ui.attach.disabled = readOnly;
  ui.readOnly.hidden = !readOnly;
  if (readOnly) ui.input.setAttribute('aria-describedby', 'read-only composer-hint');
  else ui.input.setAttribute('aria-describedby', 'composer-hint');
  ui.membersPanel.hidden = s.kind === 'direct';
  ui.addMembersForm.hidden = s.kind === 'direct' || !manager;
  renderMembers();
}

function setToggle(button: HTMLButtonElement, on: boolean, off: string, onLabel: string): void {
  button.textContent = on ? onLabel : off;
  button.setAttribute('aria-pressed', String(on));
}

ui.mute.addEventListener('click', () => prefs({ mutedUntil: ui.mute.getAttribute('aria-pressed') === 'true' ? null : Date.now() + 365 * 86_400_000 }));
ui.pin.addEventListener('click', () => prefs({ pinned: ui.pin.getAttribute('aria-pressed') !== 'true' }));
ui.archive.addEventListener('click', () => prefs({ archived: ui.archive.getAttribute('aria-pressed') !== 'true' }));
ui.block.addEventListener('click', async () => {
  const peer = openId ? convs.get(openId)?.summary?.peer : null;
  if (!peer) return;
  const blocking = ui.block.getAttribute('aria-pressed') !== 'true';
  if (await command({ t: blocking ? 'block' : 'unblock', userId: peer })) {
    if (blocking) blocked.add(peer);
    else blocked.delete(peer);
    renderHeader();
  }
});

async function prefs(change: { mutedUntil?: number | null; pinned?: boolean; archived?: boolean }): Promise<void> {
  if (!openId) return;
  const s = convs.get(openId)?.summary;
  if (await command({ t: 'set_preferences', conversationId: openId, ...change })) {
    if (s) Object.assign(s, change);
    renderHeader();
    renderList();
    scheduleListReload();
  }
}

/** Most members the panel lists (and asks presence for): a channel may have thousands; the count says how many. */
const MEMBERS_SHOWN = 50;
/** Presence of the members listed for the open conversation only (never for every conversation). */
type PresenceView = PresenceResponse['presence'][number];
let presenceOf = new Map<string, PresenceView>();

function shownMembers(id: string): string[] {
  const me = session?.userId;
  const known = [...conv(id).members].filter((u) => u !== me).sort();
  return (me ? [me, ...known] : known).slice(0, MEMBERS_SHOWN);
}

async function loadPresence(id: string): Promise<void> {
  const s = convs.get(id)?.summary;
  if (!s || !api) return;
  const ids = s.peer ? [s.peer] : shownMembers(id);
  if (ids.length === 0) return;
  try {
    const { presence } = await api.presence(ids);
    if (openId !== id) return;
    if (s.peer) {
      const p = presence[0];
      if (p)
        ui.info.textContent =
          p.status === 'online' ? `${s.peer} is online` : `${s.peer} is offline${p.lastSeenAt ? `, last seen ${formatTime(p.lastSeenAt)}` : ''}`;
      return;
    }
    presenceOf = new Map(presence.map((p) => [p.userId, p]));
    renderMembers();
  } catch {
    // Presence is decoration: the conversation works without it.
  }
}
setInterval(() => openId && void loadPresence(openId), 10_000);

function presenceText(userId: string): string {
  if (userId === session?.userId) return 'online (you)';
  const p = presenceOf.get(userId);
  if (!p) return '';
  return p.status === 'online' ? 'online' : `offline${p.lastSeenAt ? `, last seen ${formatTime(p.lastSeenAt)}` : ''}`;
}

function renderMembers(): void {
  const s = openId ? convs.get(openId)?.summary : null;
  if (!openId || !s || s.kind === 'direct') {
    ui.membersList.replaceChildren();
    return;
  }
  const shown = shownMembers(openId);
  const known = conv(openId).members.size;
  ui.membersCount.textContent = `(${s.memberCount}${shown.length < s.memberCount ? `, ${shown.length} shown` : ''})`;
  ui.membersList.replaceChildren(
    ...shown.map((u) => {
      const state = presenceText(u);
      return h(
        'li',
        { class: `member ${presenceOf.get(u)?.status ?? ''}`, 'data-user': u },
        h('span', { class: 'member-id', text: u }),
        state ? h('small', { class: 'member-state', text: ` ${state}` }) : null,
      );
    }),
    ...(known < s.memberCount && shown.length < MEMBERS_SHOWN ? [h('li', { class: 'member more', text: `and ${s.memberCount - shown.length} more` })] : []),
  );
}

ui.leave.addEventListener('click', async () => {
  const id = openId;
  if (!id) return;
  if (!(await command({ t: 'leave', conversationId: id }))) return;
  const c = convs.get(id);
  if (c) c.summary = null;
  openId = null;
  ui.composer.hidden = true;
  ui.actions.hidden = true;
  ui.membersPanel.hidden = true;
  ui.title.textContent = 'No conversation open';
  ui.info.textContent = '';
  document.body.classList.remove('has-open');
  renderMessages();
  renderList();
  await loadList();
  ui.newButton.focus();
});

ui.rename.addEventListener('click', () => {
  ui.renameForm.hidden = !ui.renameForm.hidden;
  const s = openId ? convs.get(openId)?.summary : null;
  if (!ui.renameForm.hidden) {
    ui.renameTitle.value = s?.title ?? '';
    ui.renameTitle.focus();
  }
});

ui.renameForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const title = ui.renameTitle.value.trim();
  if (!openId || !title) return;
  const s = convs.get(openId)?.summary;
  if (await command({ t: 'rename', conversationId: openId, title })) {
    if (s) s.title = title;
    ui.renameForm.hidden = true;
    renderHeader();
    renderList();
  }
});

ui.addMembersForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const userIds = ui.addMembersInput.value
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (!openId || userIds.length === 0) return;
  if (await command({ t: 'add_members', conversationId: openId, userIds })) {
    for (const u of userIds) conv(openId).members.add(u);
    ui.addMembersInput.value = '';
    scheduleListReload();
    void loadPresence(openId);
    renderMembers();
  }
});

ui.joinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  ui.joinError.textContent = '';
  const id = ui.joinId.value.trim();
  if (!id) {
    ui.joinError.textContent = 'Enter a channel id.';
    ui.joinId.focus();
    return;
  }
  const joined = await command({ t: 'join', conversationId: id }, (text) => (ui.joinError.textContent = `Could not join: ${text}`));
  if (!joined) return;
  ui.joinId.value = '';
  conv(id).members.add(session!.userId);
  await loadList();
  await openConversation(id);
});

/** Seeds "seen by" for the last own message from the receipts endpoint; receipt frames keep it current. */
async function loadReceipts(id: string): Promise<void> {
  const c = conv(id);
  if (!api || c.summary?.kind === 'channel') return;
  const mine = [...c.messages.values()].filter((m) => m.senderId === session?.userId).sort((a, b) => b.seq - a.seq)[0];
  if (!mine) return;
  try {
    const r = await api.receipts(id, mine.seq);
    for (const u of r.seenBy) c.reads.set(u, Math.max(c.reads.get(u) ?? 0, mine.seq));
    if (id === openId) renderMessages();
  } catch {
    // Receipts are decoration as well.
  }
}

function markReadIfVisible(): void {
  if (!openId || document.visibilityState !== 'visible' || client?.state !== 'live') return;
  const c = convs.get(openId);
  const last = c ? Math.max(0, ...[...c.messages.values()].map((m) => m.seq)) : 0;
  const s = c?.summary;
  if (!c || last === 0 || (s && s.readSeq >= last)) return;
  if (s) {
    s.readSeq = last;
    s.unread = 0;
    s.mentions = 0;
  }
  renderList();
  void client.command({ t: 'mark_read', conversationId: openId, seq: last }).catch(() => {
    if (s) s.readSeq = 0;
  });
}
document.addEventListener('visibilitychange', markReadIfVisible);

// ---- messages ----------------------------------------------------------------------

function renderTyping(): void {
  if (!openId) return;
  const now = Date.now();
  const who = (typingUntil.get(openId) ?? []).filter((t) => t.until > now).map((t) => t.userId);
  ui.typing.textContent = who.length ? `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…` : '';
}

function renderMessages(toBottom = false): void {
  if (!openId) {
    ui.messages.replaceChildren();
    return;
  }
  const c = conv(openId);
  const atBottom = toBottom || ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
  const active = document.activeElement instanceof HTMLElement && ui.messages.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
  const sorted = [...c.messages.values()].sort((a, b) => a.seq - b.seq);
  const sentIds = new Set(sorted.map((m) => m.clientMsgId));
  const pending = (outbox?.all() ?? []).filter((i) => i.conversationId === openId && !sentIds.has(i.clientMsgId));
  const me = session?.userId;
  const lastMine = [...sorted].reverse().find((m) => m.senderId === me && m.status === 'active');
  const items: HTMLElement[] = [];
  if (c.nextCursor) items.push(h('li', { class: 'older', text: c.loading ? 'Loading older messages…' : 'Scroll up for older messages' }));
  for (const m of sorted) items.push(renderMessage(m, c, m === lastMine));
  for (const p of pending) {
    items.push(
      h(
        'li',
        { class: 'message mine pending', 'data-client-msg-id': p.clientMsgId },
        h(
          'div',
          { class: 'meta' },
          h('span', { class: 'sender', text: me ?? '' }),
          h('span', { class: 'status', text: client?.state === 'live' ? 'sending…' : 'queued (offline)' }),
        ),
        h('p', { class: 'text', text: p.text }),
      ),
    );
  }
  ui.messages.replaceChildren(...items);
  if (atBottom) ui.messages.scrollTop = ui.messages.scrollHeight;
  if (active) (ui.messages.querySelector(`[data-key="${CSS.escape(active)}"]`) as HTMLElement | null)?.focus();
  renderTyping();
}

function renderMessage(m: Msg, c: Conv, lastMine: boolean): HTMLElement {
  const me = session?.userId;
  const mine = m.senderId === me;
  const removed = m.status !== 'active';
  const key = (action: string) => `${m.messageId}:${action}`;
  const li = h('li', {
    class: `message${mine ? ' mine' : ''}${removed ? ' removed' : ''}`,
    'data-message-id': m.messageId,
    'data-seq': m.seq,
    'data-client-msg-id': m.clientMsgId,
  });
  li.append(
    h(
      'div',
      { class: 'meta' },
      h('span', { class: 'sender', text: m.senderId }),
      h('time', { datetime: new Date(m.at).toISOString(), text: formatTime(m.at) }),
      m.editedAt && !removed ? h('span', { class: 'edited', text: '(edited)' }) : null,
    ),
  );
  if (m.replyTo) li.append(h('blockquote', { class: 'reply-to', text: `↪ ${m.replyTo.senderId ?? 'someone'}: ${m.replyTo.preview ?? '…'}` }));
  if (removed) {
    li.append(h('p', { class: 'text removed-text', text: m.status === 'recalled' ? 'Message recalled' : 'Message deleted' }));
    return li;
  }
  const text = h('p', { class: 'text' });
  // Mentions are highlighted; the text itself is only ever set as text.
  for (const part of m.text.split(/(@[A-Za-z0-9_-]+)/)) {
    if (/^@[A-Za-z0-9_-]+$/.test(part) && m.mentions.includes(part.slice(1)))
      text.append(h('mark', { class: part.slice(1) === me ? 'mention me' : 'mention', text: part }));
    else if (part) text.append(part);
  }
  li.append(text);
  for (const a of m.attachments) li.append(renderAttachment(a));
  if (m.reactions.length) {
    li.append(
      h(
        'div',
        { class: 'reactions' },
        ...m.reactions.map((r) =>
          h('button', {
            type: 'button',
            class: r.mine ? 'reaction mine' : 'reaction',
            'data-key': key(`r${r.emoji}`),
            'aria-pressed': String(r.mine),
            'aria-label': `${r.emoji} ${r.count}`,
            text: `${r.emoji} ${r.count}`,
            onclick: () => void command({ t: r.mine ? 'unreact' : 'react', conversationId: m.conversationId, messageId: m.messageId, emoji: r.emoji }),
          }),
        ),
      ),
    );
  }
  const actions = h('div', { class: 'actions' });
  actions.append(h('button', { type: 'button', 'data-key': key('reply'), text: 'Reply', onclick: () => startComposing('reply', m) }));
  for (const emoji of QUICK_REACTIONS) {
    if (m.reactions.some((r) => r.emoji === emoji && r.mine)) continue;
    actions.append(
      h('button', {
        type: 'button',
        'data-key': key(`q${emoji}`),
        'aria-label': `React ${emoji}`,
        text: emoji,
        onclick: () => void command({ t: 'react', conversationId: m.conversationId, messageId: m.messageId, emoji }),
      }),
    );
  }
  if (mine) {
    actions.append(h('button', { type: 'button', 'data-key': key('edit'), text: 'Edit', onclick: () => startComposing('edit', m) }));
    actions.append(
      h('button', {
        type: 'button',
        'data-key': key('recall'),
        text: 'Recall',
        onclick: () => void command({ t: 'recall', conversationId: m.conversationId, messageId: m.messageId }),
      }),
    );
  }
  if (c.summary && (c.summary.role === 'owner' || c.summary.role === 'admin')) {
    actions.append(
      h('button', {
        type: 'button',
        'data-key': key('delete'),
        text: 'Delete',
        onclick: () => void command({ t: 'delete', conversationId: m.conversationId, messageId: m.messageId }),
      }),
    );
  }
  li.append(actions);
  if (mine && lastMine && c.summary?.kind !== 'channel') {
    const seen = [...c.reads].filter(([u, seq]) => u !== me && seq >= m.seq).map(([u]) => u);
    if (seen.length) li.append(h('p', { class: 'seen', text: `Seen by ${seen.join(', ')}` }));
  }
  return li;
}

function renderAttachment(a: AttachmentRef): HTMLElement {
  const image = /^image\/(png|jpeg|gif|webp|avif|bmp)$/.test(a.contentType);
  const box = h('div', { class: 'attachment' });
  if (image) {
    const img = h('img', { alt: a.name, class: 'preview', loading: 'lazy' });
    box.append(img);
    void blobUrl(a.id).then(
      (url) => (img.src = url),
      () => (img.alt = `${a.name} (preview unavailable)`),
    );
  }
  box.append(
    h('button', {
      type: 'button',
      class: 'download',
      text: `Download ${a.name} (${formatSize(a.size)})`,
      onclick: async () => {
        const link = h('a', { href: await blobUrl(a.id), download: a.name });
        document.body.append(link);
        link.click();
        link.remove();
      },
    }),
  );
  return box;
}

function blobUrl(id: string): Promise<string> {
  let p = previews.get(id);
  if (!p) {
    p = api!.attachment(id).then((b) => URL.createObjectURL(b));
    p.catch(() => previews.delete(id));
    previews.set(id, p);
  }
  return p;
}

function formatSize(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1 << 20 ? `${Math.round(bytes / 1024)} KB` : `${(bytes / (1 << 20)).toFixed(1)} MB`;
}

// ---- boot ----------------------------------------------------------------------------------

try {
  const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null') as Session | null;
  if (saved?.userId && saved.token) start(saved);
  else ui.signinUser.focus();
} catch {
  ui.signinUser.focus();
}
