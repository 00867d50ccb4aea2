import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppendOptions, AppendResult } from '../services/event-log/event-store.js';
import type { EventLog } from '../services/event-log/event-log.js';
import type { ParleyEvent } from '../contracts/index.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { commandsOn } from './support/write-side.js';

/**
 * A replicated stream answers a publish whose Nats-Msg-Id it knows but has
 * not applied yet with `{"seq":0,"duplicate":true}`: the original append was
 * proposed by a leader that lost its quorum, and every retry inside the dedup
 * window gets the same answer (found by `npm run chaos`: a SIGSTOPped stream
 * leader; reproduced on a 3-node cluster by isolating the leader, publishing
 * with an id, and publishing again with the same id; docs/reliability.md).
 * The write side used to read "the original" at sequence 0 and answer the
 * retried send `internal` for as long as the window lasted. It must decide
 * on the log instead: answer with the original when it was stored, store the
 * message once when it was not.
 *
 * A single nats-server never gives that answer, so the store here gives it
 * once, in front of the real stream; everything else is real.
 */
let p: TestPlatform;

beforeAll(async () => {
  p = await startTestPlatform({ withWorkers: false });
});
afterAll(async () => {
  await p?.stop();
});

/** The real store, except that the next append carrying a dedup id is answered as pending (after `before` ran). */
function storeAnsweringPending(real: EventLog, before: (subject: string, event: ParleyEvent, options: AppendOptions) => Promise<unknown>) {
  let armed = false;
  const store = new Proxy(real, {
    get(target, prop) {
      if (prop === 'append') {
        return async (subject: string, event: ParleyEvent, options: AppendOptions = {}): Promise<AppendResult> => {
          if (armed && options.msgId) {
            armed = false;
            await before(subject, event, options);
            return { seq: 0, duplicate: true };
          }
          return target.append(subject, event, options);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, arm: () => (armed = true) };
}

const cases = [
  // The proposal was lost with its leader: nothing is stored, the retry must store the message.
  { name: 'original never applied', applyOriginal: false, duplicate: false },
  // The proposal was applied after all: the retry must answer with the original.
  { name: 'original applied meanwhile', applyOriginal: true, duplicate: true },
];

describe('a send answered as a duplicate without a sequence', () => {
  for (const c of cases) {
    it(`is decided on the log (${c.name}) and stored exactly once`, async () => {
      const { runtime } = p.platform;
      const { store, arm } = storeAnsweringPending(runtime.store, async (subject, event, options) => {
        if (c.applyOriginal) await runtime.store.append(subject, event, options);
      });
      const commands = commandsOn(p, store);
      const { conversationId } = await commands.create('ann', { kind: 'group', title: `pending ${c.name}`, members: ['bob'] });
      arm();
      const result = await commands.send('ann', { conversationId, clientMsgId: 'pending-1', text: 'hello' });
      expect(result).toMatchObject({ conversationId, clientMsgId: 'pending-1', duplicate: c.duplicate });
      expect(result.seq).toBeGreaterThan(0);
      const stored: { seq: number; messageId: string }[] = [];
      for await (const e of runtime.store.readSubject(runtime.subjects.conv(conversationId), 0)) {
        if (e.event.type === 'message.sent' && e.event.data.clientMsgId === 'pending-1') stored.push({ seq: e.seq, messageId: e.event.data.messageId });
      }
      expect(stored).toEqual([{ seq: result.seq, messageId: result.messageId }]);
      // A later retry is answered from the state: the same message.
      expect(await commands.send('ann', { conversationId, clientMsgId: 'pending-1', text: 'hello' })).toMatchObject({
        seq: result.seq,
        messageId: result.messageId,
        duplicate: true,
      });
    });
  }
});
