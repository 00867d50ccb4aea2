import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { appendHeaders, type PublishHeaders } from './stream-publisher.js';

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** What the client library's own headers object puts on the wire for the same headers. */
function viaMsgHdrs(o: PublishHeaders): string {
  const h = headers();
  h.set('Nats-Expected-Stream', o.expectedStream);
  if (o.msgId !== undefined) h.set('Nats-Msg-Id', o.msgId);
  if (o.expectedLastSubjectSeq !== undefined) h.set('Nats-Expected-Last-Subject-Sequence', String(o.expectedLastSubjectSeq));
  if (o.extra) for (const [k, v] of Object.entries(o.extra)) h.set(k, v);
  // MsgHdrs' implementation has encode(); its published type does not say so.
  return decode((h as unknown as { encode(): Uint8Array }).encode());
}

describe('append headers', () => {
  it.each<PublishHeaders>([
    { expectedStream: 'ns_events' },
    { expectedStream: 'ns_events', msgId: 'send:g_1:ann:c-1.x', expectedLastSubjectSeq: 0, extra: { 'Parley-Prev-Seq': '0' } },
    { expectedStream: 'ns_events', expectedLastSubjectSeq: 123456789, extra: { 'Parley-Prev-Seq': '123456789' } },
  ])('encode exactly as MsgHdrs does: %j', (o) => {
    expect(decode(appendHeaders(o).encode())).toBe(viaMsgHdrs(o));
  });

  it('refuse a value with a line break, which would end the header block', () => {
    expect(() => appendHeaders({ expectedStream: 's', msgId: 'a\r\nNats-Expected-Stream: other' })).toThrow(/line break/);
  });
});
