import { parseEntitySubject, upcasters } from '../../contracts/index.js';

/**
 * One row of `events` (migrations/clickhouse/0001, 0002, 0007): ids, sizes, counts
 * and timings, never content. Text is reduced to its length here, before
 * anything leaves the process; titles, emoji and attachment names are not
 * carried at all.
 */
export interface EventRow {
  shard: number;
  epoch: string;
  seq: number;
  entity_kind: string;
  entity_id: string;
  type: string;
  version: number;
  /** Seconds with milliseconds, e.g. "1732370000.123": unambiguous DateTime64(3) text input. */
  at: string;
  actor: string;
  conversation_id: string;
  /** Decimal string: snowflakes exceed 2^53. */
  message_id: string;
  text_chars: number;
  text_bytes: number;
  ref_seq: number;
  /** The shard `ref_seq` is a sequence of (0 when there is none). */
  ref_shard: number;
  target_user_id: string;
  conversation_kind: string;
  role: string;
  member_count: number;
  mention_count: number;
  attachment_count: number;
  attachment_bytes: number;
}

export interface EventPosition {
  shard: number;
  epoch: string;
  seq: number;
  subject: string;
  /** The shard of a conversation (Subjects.shardOf); without it, a one-shard log (every shard is 0). */
  shardOf?: (conversationId: string) => number;
}

type Data = Record<string, unknown>;

/** The envelope every stored event has; `data` is read field by field. */
export interface AnalyticsEvent {
  type: string;
  v: number;
  at: number;
  actor: string;
  data: unknown;
}

const decoder = new TextDecoder();

/**
 * Reads a stored event for analytics: JSON, upcast to the current version,
 * and only the envelope checked. The full schema was enforced when the
 * event was appended; skipping it here keeps ingest fast (it costs several
 * microseconds per event) and lets an older analytics build still count
 * event types it does not know yet. Throws on anything without an envelope.
 */
export function readStoredEvent(bytes: Uint8Array): AnalyticsEvent {
  let current = JSON.parse(decoder.decode(bytes)) as Data;
  for (let hops = 0; hops < 16; hops++) {
    const upcast = upcasters[`${String(current?.type)}@${String(current?.v)}`];
    if (!upcast) break;
    current = upcast(current);
  }
  const { type, v, at, actor } = current ?? {};
  if (typeof type !== 'string' || typeof v !== 'number' || typeof at !== 'number' || typeof actor !== 'string') {
    throw new Error('not an event: missing type, v, at or actor');
  }
  return current as unknown as AnalyticsEvent;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const obj = (v: unknown): Data | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Data) : undefined);

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is a single code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

const entities = new Map<string, ReturnType<typeof parseEntitySubject>>();
/**
 * The entity of a subject, memoised: splitting it was a tenth of the
 * per-event JavaScript cost of ingest, and a log names the same
 * conversations and users over and over. Bounded by starting afresh.
 */
function entityOf(subject: string): ReturnType<typeof parseEntitySubject> {
  let entity = entities.get(subject);
  if (entity === undefined) {
    if (entities.size >= 10_000) entities.clear();
    entity = parseEntitySubject(subject);
    entities.set(subject, entity);
  }
  return entity;
}

export function formatAt(ms: number): string {
  const whole = Math.floor(ms / 1000);
  return `${whole}.${String(ms - whole * 1000).padStart(3, '0')}`;
}

/**
 * Maps any event to a row by field name rather than by type, so event types
 * added later still land with their ids and sizes (a new type only needs a
 * change here when it carries a new kind of measurable field).
 */
export function toEventRow(pos: EventPosition, event: AnalyticsEvent): EventRow {
  const data = (obj(event.data) ?? {}) as Data;
  const entity = entityOf(pos.subject);
  const target = obj(data.target);
  const cause = obj(data.cause);
  const text = typeof data.text === 'string' ? data.text : '';
  const members = Array.isArray(data.members) ? data.members : null;
  const mentions = Array.isArray(data.mentions) ? data.mentions : null;
  const attachments = Array.isArray(data.attachments) ? data.attachments : null;
  let attachmentBytes = 0;
  if (attachments) for (const a of attachments) attachmentBytes += num(obj(a)?.size);
  const conversationId = str(data.conversationId);
  const refSeq = num(target?.seq) || num(data.seq) || num(cause?.conversationSeq);
  return {
    shard: pos.shard,
    epoch: pos.epoch,
    seq: pos.seq,
    entity_kind: entity?.kind ?? '',
    entity_id: entity?.id ?? '',
    type: event.type,
    version: event.v,
    at: formatAt(event.at),
    actor: event.actor,
    conversation_id: conversationId,
    message_id: str(data.messageId) || str(target?.messageId) || '0',
    text_chars: text ? codePoints(text) : 0,
    text_bytes: text ? Buffer.byteLength(text, 'utf8') : 0,
    ref_seq: refSeq,
    // Every sequence an event points at is of its conversation's shard (a message, a marker's position, the
    // change a membership event derives from); only a tombstone of a user's event points into its own.
    ref_shard: refSeq === 0 ? 0 : conversationId && pos.shardOf ? pos.shardOf(conversationId) : pos.shard,
    target_user_id: str(data.userId),
    conversation_kind: str(data.kind),
    role: str(data.role),
    member_count: members ? members.length : 0,
    mention_count: mentions ? mentions.length : 0,
    attachment_count: attachments ? attachments.length : 0,
    attachment_bytes: attachmentBytes,
  };
}
