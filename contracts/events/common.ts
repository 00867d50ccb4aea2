import { z } from 'zod';
import { ConversationId, MessageId, UserId } from '../ids.js';

export const ConversationKind = z.enum(['direct', 'group', 'channel']);
export type ConversationKind = z.infer<typeof ConversationKind>;

export const MemberRole = z.enum(['owner', 'admin', 'member']);
export type MemberRole = z.infer<typeof MemberRole>;

/** Who may post in a channel; groups and 1:1s always allow every member. */
export const PostPolicy = z.enum(['everyone', 'admins']);
export type PostPolicy = z.infer<typeof PostPolicy>;

/** How users join a channel: only when added by an admin, or by themselves. */
export const JoinPolicy = z.enum(['invite', 'open']);
export type JoinPolicy = z.infer<typeof JoinPolicy>;

export const envelope = {
  /** Milliseconds since the Unix epoch, server clock at append time. */
  at: z.number().int().nonnegative(),
  /** The authenticated user who caused the event (never taken from the client's frame). */
  actor: UserId,
};

/** A message is addressed by its id and, for direct lookup in the log, its stream sequence. */
export const MessageRef = z.strictObject({ messageId: MessageId, seq: z.number().int().positive() });
export type MessageRef = z.infer<typeof MessageRef>;

/** An attachment is its content hash (SHA-256, hex): identical uploads are stored once. */
export const AttachmentId = z.string().regex(/^[0-9a-f]{64}$/, 'attachment ids are SHA-256 hex digests');

export const AttachmentRef = z.strictObject({
  id: AttachmentId,
  name: z.string().min(1).max(255),
  size: z.number().int().nonnegative(),
  contentType: z.string().min(1).max(127),
});
export type AttachmentRef = z.infer<typeof AttachmentRef>;

/**
 * One emoji (a single grapheme that is pictographic, including ZWJ
 * sequences, skin tones, flags and keycaps), up to 32 UTF-16 units.
 */
export const Emoji = z
  .string()
  .min(1)
  // abort: zod runs later checks after a failed one unless told not to, and the
  // refine below costs quadratic memory in V8 (each segment copies the input):
  // a 64 KiB "emoji" took gigabytes and ended the gateway's process.
  .max(32, { abort: true })
  .refine((s) => {
    if (s.length > 32) return false;
    const graphemes = [...new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(s)];
    return graphemes.length === 1 && /\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20E3/u.test(s);
  }, 'a reaction is exactly one emoji');

export const ConversationRef = { conversationId: ConversationId };
