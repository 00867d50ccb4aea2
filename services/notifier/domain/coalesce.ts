/** One message that should reach one offline member. */
export interface Hit {
  userId: string;
  conversationId: string;
  seq: number;
  at: number;
  senderId: string;
  preview: string | null;
  mentioned: boolean;
}

/** A coalescing window: one notification for one member about one conversation. */
export interface Window {
  /** Set for rows that already exist (open, not yet dispatched). */
  id?: string;
  userId: string;
  conversationId: string;
  firstSeq: number;
  lastSeq: number;
  count: number;
  mentioned: boolean;
  senderId: string;
  preview: string | null;
  firstAt: number;
  lastAt: number;
  /** firstAt + window: when delivery starts. */
  dueAt: number;
}

/** A clear of one member's notifications in one conversation (read, muted, left), as of the event at `atSeq`. */
export interface ClearPoint {
  userId: string;
  conversationId: string;
  /** Sequence of the event that clears. */
  atSeq: number;
  /** It clears windows whose last message is at or before this sequence (never after `atSeq`). */
  uptoSeq: number;
}

export interface CoalesceResult {
  /** Existing windows that took more messages. */
  updated: Window[];
  /** New windows, keyed by their first message. */
  created: Window[];
}

const keyOf = (userId: string, conversationId: string) => `${userId}\u0000${conversationId}`;

/**
 * Folds hits (in log order) into windows. A message joins the member's
 * latest open window for the conversation when it was sent before that
 * window closes; otherwise it opens a new one. Windows are measured in event
 * time, not processing time, so replaying the same events gives the same
 * windows; a hit already covered by a window (seq <= lastSeq) changes nothing.
 *
 * `clears` are the clears of the same batch, applied after it: a window that
 * one of them clears before a hit arrives (the clear comes between the
 * window's last message and the hit, and reaches that message) is closed for
 * the hit, which opens a new window, as it would have with the events
 * applied one at a time.
 */
export function coalesce(open: readonly Window[], hits: readonly Hit[], windowMs: number, clears: readonly ClearPoint[] = []): CoalesceResult {
  const clearsOf = new Map<string, ClearPoint[]>();
  for (const c of clears) {
    const k = keyOf(c.userId, c.conversationId);
    const list = clearsOf.get(k);
    if (list) list.push(c);
    else clearsOf.set(k, [c]);
  }
  const clearedBefore = (w: Window, seq: number) =>
    (clearsOf.get(keyOf(w.userId, w.conversationId)) ?? []).some((c) => c.atSeq > w.lastSeq && c.atSeq < seq && c.uptoSeq >= w.lastSeq);
  const latest = new Map<string, Window>();
  for (const w of open) {
    const k = keyOf(w.userId, w.conversationId);
    const seen = latest.get(k);
    if (!seen || w.firstSeq > seen.firstSeq) latest.set(k, { ...w });
  }
  const updated = new Set<Window>();
  const created: Window[] = [];
  for (const hit of [...hits].sort((a, b) => a.seq - b.seq)) {
    const k = keyOf(hit.userId, hit.conversationId);
    const current = latest.get(k);
    if (current && hit.seq <= current.lastSeq) continue;
    if (current && hit.at < current.dueAt && !clearedBefore(current, hit.seq)) {
      current.lastSeq = hit.seq;
      current.count += 1;
      current.mentioned ||= hit.mentioned;
      current.senderId = hit.senderId;
      current.preview = hit.preview;
      current.lastAt = hit.at;
      if (current.id !== undefined) updated.add(current);
      continue;
    }
    const fresh: Window = {
      userId: hit.userId,
      conversationId: hit.conversationId,
      firstSeq: hit.seq,
      lastSeq: hit.seq,
      count: 1,
      mentioned: hit.mentioned,
      senderId: hit.senderId,
      preview: hit.preview,
      firstAt: hit.at,
      lastAt: hit.at,
      dueAt: hit.at + windowMs,
    };
    latest.set(k, fresh);
    created.push(fresh);
  }
  return { updated: [...updated], created };
}
