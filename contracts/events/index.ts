import { z } from 'zod';
import { ConversationEvent } from './conversation.js';
import { LogEvent } from './log.js';
import { UserEvent } from './user.js';

/**
 * Events are the log. Each is stored as JSON on exactly one subject: the
 * conversation's (`conv.<id>`) or the user's (`user.<id>`). The subject is the
 * entity; `type` says what happened; `v` is the schema version of `data`.
 * Old versions stay readable forever: `parseStoredEvent` upcasts them to the
 * current shape, so projectors and clients only ever see the latest version.
 */
export * from './common.js';
export * from './conversation.js';
export * from './log.js';
export * from './user.js';

/** Log events (`log.tombstoned`) may be stored on any entity's subject. */
export const ParleyEvent = z.union([ConversationEvent, UserEvent, LogEvent]);
export type ParleyEvent = z.infer<typeof ParleyEvent>;
export type EventType = ParleyEvent['type'];

/**
 * Upcasters turn a stored event of an older version into the next version.
 * Keyed by `${type}@${version}`; applied repeatedly until no upcaster
 * matches. Every schema change adds its entry here together with a test that
 * replays both versions.
 */
export const upcasters: Record<string, (old: Record<string, unknown>) => Record<string, unknown>> = {};

/** Parses a stored event of any version into the current shape, or throws a ZodError. */
export function parseStoredEvent(raw: unknown): ParleyEvent {
  return ParleyEvent.parse(upcastStoredEvent(raw));
}

/**
 * A stored event upcast to the current version but not yet validated: its
 * `type` lets a reader that ignores most events skip validating those.
 */
export function upcastStoredEvent(raw: unknown): { type?: unknown } {
  let current = raw as Record<string, unknown>;
  for (let hops = 0; hops < 16; hops++) {
    const key = `${String(current?.type)}@${String(current?.v)}`;
    const upcast = upcasters[key];
    if (!upcast) break;
    current = upcast(current);
  }
  return current ?? {};
}
