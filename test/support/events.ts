import type { ConversationEvent, ParleyEvent } from '../../contracts/index.js';
import type { Runtime } from '../../services/runtime/runtime.js';

/** Builders for stored events, for tests that write the log directly (no gateway, no command layer). */
let counter = 0;

export function created(conversationId: string, members: string[], at = Date.now()): ConversationEvent {
  return {
    type: 'conversation.created',
    v: 1,
    at,
    actor: members[0]!,
    data: {
      conversationId,
      kind: 'group',
      title: `room ${conversationId}`,
      members: members.map((userId, i) => ({ userId, role: i === 0 ? 'owner' : 'member' })),
    },
  };
}

export function sent(conversationId: string, actor: string, text: string, at = Date.now()): ConversationEvent {
  counter++;
  return { type: 'message.sent', v: 1, at, actor, data: { conversationId, messageId: String(1_000_000 + counter), clientMsgId: `c${counter}`, text } };
}

/** Appends events in order to their conversation's subject; returns their sequences. */
export async function appendAll(runtime: Runtime, events: ParleyEvent[]): Promise<number[]> {
  const seqs: number[] = [];
  for (const e of events) {
    const subject = runtime.subjects.conv((e.data as { conversationId: string }).conversationId);
    seqs.push((await runtime.store.append(subject, e)).seq);
  }
  return seqs;
}

/** Publishes raw bytes to a subject of the log, bypassing every schema (old versions, corrupt events). */
export async function appendRaw(runtime: Runtime, subject: string, json: unknown): Promise<number> {
  const ack = await runtime.nats.js.publish(subject, new TextEncoder().encode(typeof json === 'string' ? json : JSON.stringify(json)));
  return ack.seq;
}

export async function waitUntil(cond: () => Promise<boolean> | boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // A condition that throws (e.g. a consumer being recreated) counts as not yet.
  while (
    !(await Promise.resolve()
      .then(cond)
      .catch(() => false))
  ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
