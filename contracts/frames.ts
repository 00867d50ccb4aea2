import { z } from 'zod';
import { ErrorBody } from './errors.js';
import { ParleyEvent } from './events/index.js';
import { COMMAND_SCHEMAS, CreateCommand, SendCommand, type Command } from './commands.js';
import { CreateConversationResponse } from './http.js';
import { ClientMsgId, ConversationId, MessageId, RequestId, UserId } from './ids.js';

/**
 * WebSocket frames: one JSON object per text frame, discriminated by `t`.
 * Client frames are strict: unknown fields are rejected, so a typo never
 * silently changes meaning. Documented with examples in docs/protocol.md.
 */

// ---- client -> server ----------------------------------------------------

const withId = <S extends z.ZodRawShape>(schema: z.ZodObject<S>) => schema.extend({ id: RequestId });

/** Liveness probe; answered with `pong`. Any frame also counts as activity. */
export const PingFrame = z.strictObject({ t: z.literal('ping'), id: RequestId.optional() });
export type PingFrame = z.infer<typeof PingFrame>;

/** Every command of contracts/commands.ts as a frame, with the client's request id. */
export const CreateFrame = z.discriminatedUnion('kind', [withId(CreateCommand.options[0]), withId(CreateCommand.options[1]), withId(CreateCommand.options[2])]);
const commandFrames = COMMAND_SCHEMAS.map((s) => withId(s as z.ZodObject));

/** Schema per frame type, so an invalid frame is reported against the schema of its own type. */
export const CLIENT_FRAME_SCHEMAS: Readonly<Record<string, z.ZodType>> = Object.fromEntries([
  ['ping', PingFrame],
  ['create', CreateFrame],
  ...COMMAND_SCHEMAS.map((s, i) => [s.shape.t.value, commandFrames[i]!] as const),
]);
export const CLIENT_FRAME_TYPES: readonly string[] = Object.keys(CLIENT_FRAME_SCHEMAS);

export type ClientFrame = (Command & { id: string }) | PingFrame;
export type CommandFrame<T extends Command['t']> = Extract<Command, { t: T }> & { id: string };

/** Kept for client authors: `send` as a frame. */
export const SendFrame = withId(SendCommand);
export type SendFrame = z.infer<typeof SendFrame>;

// ---- server -> client ----------------------------------------------------

export const WelcomeFrame = z.strictObject({
  t: z.literal('welcome'),
  userId: UserId,
  connectionId: z.string(),
  serverTime: z.number().int(),
  /** The client should send a frame (ping if idle) at least this often. */
  heartbeatMs: z.number().int().positive(),
  limits: z.strictObject({
    maxFrameBytes: z.number().int().positive(),
    maxTextCodePoints: z.number().int().positive(),
  }),
});
export type WelcomeFrame = z.infer<typeof WelcomeFrame>;

export const SendResult = z.strictObject({
  conversationId: ConversationId,
  messageId: MessageId,
  clientMsgId: ClientMsgId,
  /** Stream sequence of the stored event. */
  seq: z.number().int().positive(),
  /** Position after this event; fold into the device token. */
  pos: z.string(),
  at: z.number().int(),
  /** True when this answers a retry of an already stored message. */
  duplicate: z.boolean(),
});
export type SendResult = z.infer<typeof SendResult>;

/** The answer to commands that append one event (other than send and create). */
export const AppendResult = z.strictObject({
  conversationId: ConversationId.optional(),
  seq: z.number().int().positive(),
  pos: z.string(),
});
export type AppendResult = z.infer<typeof AppendResult>;

export const CommandResult = z.union([SendResult, CreateConversationResponse, AppendResult]);
export type CommandResult = z.infer<typeof CommandResult>;

export const AckFrame = z.strictObject({ t: z.literal('ack'), id: RequestId, result: CommandResult });
export type AckFrame = z.infer<typeof AckFrame>;

export const PongFrame = z.strictObject({ t: z.literal('pong'), id: RequestId.optional(), serverTime: z.number().int() });
export type PongFrame = z.infer<typeof PongFrame>;

/** `id` is present when the error answers a specific request frame. */
export const ErrorFrame = z.strictObject({ t: z.literal('error'), id: RequestId.optional(), ...ErrorBody.shape });
export type ErrorFrame = z.infer<typeof ErrorFrame>;

/**
 * A stored event, live or replayed. `seq` is its stream sequence; `prevSeq` the
 * sequence of the previous event stored on the same entity (0: none), the
 * same number whether the event arrives live, in a resume or in the catch-up
 * after a join: one event is one frame. A client that saw `prevSeq` for that
 * entity knows nothing is missing in between.
 */
export const EventFrame = z.strictObject({
  t: z.literal('event'),
  /** The subject the event is stored on: a conversation (`conv`) or the user (`user`). */
  entity: z.strictObject({ kind: z.enum(['conv', 'user']), id: z.string() }),
  /** The event's position in the log (stream sequence). */
  seq: z.number().int().positive(),
  /** The `seq` of the previous event stored on the same entity; 0 when there is none. */
  prevSeq: z.number().int().nonnegative(),
  /** Opaque position after this event: fold it into the device's position (`advancePosition`). */
  pos: z.string(),
  event: ParleyEvent,
});
export type EventFrame = z.infer<typeof EventFrame>;

/** Someone is typing in a conversation; hide the indicator at `expiresAt` unless renewed. Never stored. */
export const TypingFrame = z.strictObject({
  t: z.literal('typing'),
  conversationId: ConversationId,
  /** Who is typing (never one of the receiving user's own devices). */
  userId: UserId,
  /** When to hide the indicator unless another `typing` arrives, in milliseconds since the epoch. */
  expiresAt: z.number().int(),
});
export type TypingFrame = z.infer<typeof TypingFrame>;

/** A member read (or received) a conversation up to `seq`: drives "seen by" live. Not sent in channels. */
export const ReceiptFrame = z.strictObject({
  t: z.literal('receipt'),
  conversationId: ConversationId,
  userId: UserId,
  kind: z.enum(['read', 'delivered']),
  seq: z.number().int().positive(),
});
export type ReceiptFrame = z.infer<typeof ReceiptFrame>;

/** Why a device must refetch state over HTTP instead of trusting the replay. */
export const ResyncReason = z.enum([
  /** The device presented no position (a new device): load conversations and history over HTTP. */
  'no_position',
  /** The position is not one this server issued. */
  'invalid_position',
  /** The log was recreated since the position was issued; its sequences mean nothing now. */
  'epoch_changed',
  /** Events after the position have aged out of the log's retention. */
  'retention',
  /** More events were missed than a replay carries (MAX_REPLAY_EVENTS): refetch the listed conversations. */
  'too_far_behind',
]);

/**
 * Ends every resume. `complete`: every event of the device's conversations and
 * user subject after its position was delivered (replayed, then live), each
 * once, in order per entity. `resync_needed`: refetch the listed
 * conversations (all of them when `conversations` is null) over HTTP; live
 * delivery continues after `position` either way.
 */
export const SyncedFrame = z.strictObject({
  t: z.literal('synced'),
  status: z.enum(['complete', 'resync_needed']),
  /** The device's new position: store it. */
  position: z.string(),
  /** Event frames this resume sent before this frame: missed events replayed from the log, and live ones that arrived meanwhile. */
  replayed: z.number().int().nonnegative(),
  resync: z
    .strictObject({
      reason: ResyncReason,
      conversations: z.array(ConversationId).nullable(),
    })
    .optional(),
});
export type SyncedFrame = z.infer<typeof SyncedFrame>;

export const ServerFrame = z.discriminatedUnion('t', [WelcomeFrame, AckFrame, PongFrame, ErrorFrame, EventFrame, TypingFrame, ReceiptFrame, SyncedFrame]);
export type ServerFrame = z.infer<typeof ServerFrame>;
