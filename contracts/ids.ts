import { z } from 'zod';

/**
 * Identifiers double as NATS subject tokens (`conv.<id>`, `user.<id>`), so they
 * are restricted to characters that can never be a subject separator or
 * wildcard.
 */
const SUBJECT_SAFE = /^[A-Za-z0-9_-]+$/;

/** An authenticated user's id, as carried in the token's `sub` claim. */
export const UserId = z.string().min(1).max(64).regex(SUBJECT_SAFE, 'user ids use A-Z a-z 0-9 _ -');
export type UserId = z.infer<typeof UserId>;

/** `d_<hash>` for 1:1 conversations (derived from the pair), `g_<snowflake>` for groups. */
export const ConversationId = z
  .string()
  .min(3)
  .max(80)
  .regex(/^[dgc]_[A-Za-z0-9_-]+$/, 'not a conversation id');
export type ConversationId = z.infer<typeof ConversationId>;

/**
 * Chosen by the client once per message and reused on every retry: the server
 * answers a retried id with the original message instead of storing it twice.
 */
export const ClientMsgId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_:.-]+$/, 'client message ids use A-Z a-z 0-9 _ : . -');
export type ClientMsgId = z.infer<typeof ClientMsgId>;

/** A 64-bit time-ordered snowflake id, as a decimal string (JSON numbers lose precision past 2^53). */
export const MessageId = z.string().regex(/^[0-9]{1,20}$/, 'message ids are decimal strings');
export type MessageId = z.infer<typeof MessageId>;

/** Correlates a client request frame with its ack or error frame; chosen by the client. */
export const RequestId = z.string().min(1).max(64);
export type RequestId = z.infer<typeof RequestId>;
