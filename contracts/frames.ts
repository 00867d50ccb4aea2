import { z } from 'zod';
import { ErrorBody } from './errors.js';
import { ParleyEvent } from './events.js';
import { ClientMsgId, ConversationId, MessageId, RequestId, UserId } from './ids.js';
import { MessageText } from './text.js';

/**
 * WebSocket frames: one JSON object per text frame, discriminated by `t`.
 * Client frames are strict: unknown fields are rejected, so a typo never
 * silently changes meaning. Documented with examples in docs/protocol.md.
 */

// ---- client -> server ----------------------------------------------------

/** Append a text message to a conversation the user is a member of. */
export const SendFrame = z.strictObject({
  t: z.literal('send'),
  id: RequestId,
  conversationId: ConversationId,
  clientMsgId: ClientMsgId,
  text: MessageText,
});
export type SendFrame = z.infer<typeof SendFrame>;

/** Liveness probe; answered with `pong`. Any frame also counts as activity. */
export const PingFrame = z.strictObject({ t: z.literal('ping'), id: RequestId.optional() });
export type PingFrame = z.infer<typeof PingFrame>;

export const ClientFrame = z.discriminatedUnion('t', [SendFrame, PingFrame]);
export type ClientFrame = z.infer<typeof ClientFrame>;
export const CLIENT_FRAME_TYPES: readonly string[] = ClientFrame.options.map((o) => o.shape.t.value);

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

export const AckFrame = z.strictObject({ t: z.literal('ack'), id: RequestId, result: SendResult });
export type AckFrame = z.infer<typeof AckFrame>;

export const PongFrame = z.strictObject({ t: z.literal('pong'), id: RequestId.optional(), serverTime: z.number().int() });
export type PongFrame = z.infer<typeof PongFrame>;

/** `id` is present when the error answers a specific request frame. */
export const ErrorFrame = z.strictObject({ t: z.literal('error'), id: RequestId.optional(), ...ErrorBody.shape });
export type ErrorFrame = z.infer<typeof ErrorFrame>;

/**
 * A stored event, pushed live. `seq` is its stream sequence; `prevSeq` the
 * sequence of the previous event on the same entity (0 if none), so a client
 * that saw `prevSeq` for that entity knows nothing is missing in between.
 */
export const EventFrame = z.strictObject({
  t: z.literal('event'),
  entity: z.strictObject({ kind: z.enum(['conv', 'user']), id: z.string() }),
  seq: z.number().int().positive(),
  prevSeq: z.number().int().nonnegative(),
  pos: z.string(),
  event: ParleyEvent,
});
export type EventFrame = z.infer<typeof EventFrame>;

export const ServerFrame = z.discriminatedUnion('t', [WelcomeFrame, AckFrame, PongFrame, ErrorFrame, EventFrame]);
export type ServerFrame = z.infer<typeof ServerFrame>;
