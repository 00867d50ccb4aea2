import { describe, expect, it } from 'vitest';
import { subjectsFor } from '../../contracts/index.js';
import { consumerFilter, entityOf, type Projection } from './projection.js';
import { projectorConsumerName } from './runner.js';

const projection = (filterSubjects: string[]): Projection => ({ name: 'p', filterSubjects, apply: async () => undefined });

describe('per-shard consumers of a projection', () => {
  it('keep the one-shard name on shard 0 and add _s<k> on shard k', () => {
    expect(projectorConsumerName('parley', 'read-model')).toBe('parley-read-model');
    expect(projectorConsumerName('parley', 'read-model', 0)).toBe('parley-read-model');
    expect(projectorConsumerName('parley', 'notifier', 3)).toBe('parley-notifier_s3');
  });

  it("filter in each shard's own subject space, and not at all for the whole log", () => {
    const s = subjectsFor('parley', 4);
    expect(consumerFilter(projection([s.allEvents]), s, 2)).toEqual([]);
    expect(consumerFilter(projection(['parley.ev.conv.>']), s, 0)).toEqual(['parley.ev.conv.>']);
    expect(consumerFilter(projection(['parley.ev.conv.>', 'parley.ev.user.*']), s, 2)).toEqual(['parley.ev.2.conv.>', 'parley.ev.2.user.*']);
  });

  it('name the same entity on every shard', () => {
    expect(entityOf('parley.ev.conv.g_1')).toBe('conv:g_1');
    expect(entityOf('parley.ev.3.user.ann')).toBe('user:ann');
  });
});
