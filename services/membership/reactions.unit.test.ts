import { describe, expect, it } from 'vitest';
import { derivedMsgId } from './reactions.js';

describe('the Nats-Msg-Id of a derived membership event', () => {
  it('keeps the one-shard form on shard 0 and names the shard otherwise, so equal sequences of two shards never share an id', () => {
    expect(derivedMsgId(0, 5, 'ana')).toBe('m:5:ana');
    expect(derivedMsgId(1, 5, 'ana')).toBe('m1:5:ana');
    // A user id cannot make one shard's id look like another's.
    expect(derivedMsgId(0, 1, '5:ana')).not.toBe(derivedMsgId(1, 5, 'ana'));
    const ids = new Set([0, 1, 2, 10].flatMap((k) => [1, 5, 15].map((seq) => derivedMsgId(k, seq, 'ana'))));
    expect(ids.size).toBe(12);
  });
});
