import { describe, expect, it } from 'vitest';
import { advancePosition, decodePosition, encodePosition, encodeShardPosition, positionSeq, rewindPosition, withRewind, rewindsOf } from './position.js';
import { fnv1a32, shardOf } from './shards.js';
import { parseEntitySubject, subjectsFor } from './subjects.js';

describe('the shard of an entity', () => {
  it('is FNV-1a 32 of the id (published test vectors, UTF-8 bytes)', () => {
    // '', 'a', 'foobar': the reference vectors of the FNV authors; 'é' pins UTF-8 (not UTF-16) input.
    const vectors: [string, number][] = [
      ['', 0x811c9dc5],
      ['a', 0xe40c292c],
      ['foobar', 0xbf9cf968],
      ['g_01HZX', 0x44686dda],
      ['ann', 0x1529cc18],
      ['é', 0x1e9de8c1],
    ];
    for (const [text, hash] of vectors) expect(fnv1a32(text), text).toBe(hash);
  });

  it('is the hash modulo the shard count, and 0 with one shard', () => {
    const table: [string, number, number][] = [
      ['foobar', 2, 0],
      ['foobar', 3, 1],
      ['g_01HZX', 4, 2],
      ['ann', 3, 2],
      ['é', 16, 1],
      ['', 16, 5],
    ];
    for (const [id, count, shard] of table) expect(shardOf(id, count), `${id} mod ${count}`).toBe(shard);
    for (const id of ['', 'a', 'g_x', 'u_bob']) expect(shardOf(id, 1)).toBe(0);
  });

  it('refuses a shard count that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => shardOf('a', bad)).toThrow(RangeError);
  });

  it('spreads ids evenly enough over the shards', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20_000; i++) counts[shardOf(`g_${i.toString(36)}`, 4)]!++;
    for (const c of counts) expect(Math.abs(c - 5000)).toBeLessThan(500);
  });
});

describe('positions over several shards', () => {
  const zero = encodePosition([
    { shard: 0, epoch: 'e0', seq: 0 },
    { shard: 1, epoch: 'e1', seq: 0 },
  ]);

  it('advance each shard independently; a later sequence on one shard never moves another', () => {
    let token = advancePosition(zero, encodeShardPosition({ shard: 1, epoch: 'e1', seq: 7 }));
    token = advancePosition(token, encodeShardPosition({ shard: 0, epoch: 'e0', seq: 3 }));
    // An older event of shard 1 (a replay) does not lower it.
    token = advancePosition(token, encodeShardPosition({ shard: 1, epoch: 'e1', seq: 5 }));
    expect(positionSeq(token, 0)).toBe(3);
    expect(positionSeq(token, 1)).toBe(7);
    expect(decodePosition(token)!.map((p) => p.shard)).toEqual([0, 1]);
  });

  it('take a new epoch of one shard without touching the other', () => {
    const token = advancePosition(
      encodePosition([
        { shard: 0, epoch: 'e0', seq: 9 },
        { shard: 1, epoch: 'e1', seq: 40 },
      ]),
      encodeShardPosition({ shard: 1, epoch: 'e1b', seq: 2 }),
    );
    expect(decodePosition(token)).toEqual([
      { shard: 0, epoch: 'e0', seq: 9 },
      { shard: 1, epoch: 'e1b', seq: 2 },
    ]);
  });

  it('add a shard first seen in an event, and rewind only the named shard', () => {
    const single = encodePosition([{ shard: 0, epoch: 'e0', seq: 4 }]);
    const both = advancePosition(single, encodeShardPosition({ shard: 2, epoch: 'e2', seq: 11 }));
    expect(positionSeq(both, 2)).toBe(11);
    const rewound = rewindPosition(both, 2, 6);
    expect(positionSeq(rewound, 0)).toBe(4);
    expect(positionSeq(rewound, 2)).toBe(6);
  });

  it('keep conversation rewinds through per-shard folding', () => {
    const token = withRewind(zero, 'g_a', 3);
    const next = advancePosition(token, encodeShardPosition({ shard: 1, epoch: 'e1', seq: 8 }));
    expect(rewindsOf(next)).toEqual({ g_a: 3 });
    expect(positionSeq(next, 1)).toBe(8);
  });
});

describe('the subjects of a sharded log', () => {
  it('keep shard 0 on the one-shard subjects and put shard k > 0 under its number', () => {
    const one = subjectsFor('p');
    expect(one.conv('foobar')).toBe('p.ev.conv.foobar');
    expect(one.shardOfSubject('p.ev.conv.foobar')).toBe(0);
    const three = subjectsFor('p', 3);
    // 'foobar' mod 3 is 1, 'ann' mod 3 is 2 (the vectors above); find one on shard 0 too.
    expect(three.conv('foobar')).toBe('p.ev.1.conv.foobar');
    expect(three.user('ann')).toBe('p.ev.2.user.ann');
    const zero = Array.from({ length: 50 }, (_, i) => `g_${i}`).find((id) => shardOf(id, 3) === 0)!;
    expect(three.conv(zero)).toBe(`p.ev.conv.${zero}`);
    const table: [string, number | null][] = [
      ['p.ev.conv.x', 0],
      ['p.ev.1.conv.foobar', 1],
      ['p.ev.2.user.ann', 2],
      ['p.ev.3.user.ann', null],
      ['p.ev.01.user.ann', null],
      ['p.ev.x.user.ann', null],
      ['q.ev.1.conv.x', null],
      ['p.live.conv.x', null],
      ['p.ev.conv', null],
    ];
    for (const [subject, shard] of table) expect(three.shardOfSubject(subject), subject).toBe(shard);
    expect(three.storedPrefix(0)).toBe('p.ev.');
    expect(three.storedPrefix(2)).toBe('p.ev.2.');
  });

  it('parse to the same entity on every shard and in the live space', () => {
    for (const subject of ['p.ev.conv.g_1', 'p.ev.7.conv.g_1', 'p.live.conv.g_1'])
      expect(parseEntitySubject(subject), subject).toEqual({ kind: 'conv', id: 'g_1' });
    for (const subject of ['p.ev.user', 'p.ev.0.conv.g_1', 'p.live.1.conv.g_1', 'p.ev.1.chan.g_1', 'p.ev.1.conv.'])
      expect(parseEntitySubject(subject), subject).toBeNull();
  });
});
