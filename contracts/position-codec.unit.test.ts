import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { decodePosition, rewindsOf } from './position-codec.js';
import { ShardPosition } from './position.js';

/** The token's shape as a schema: what position-codec.ts checks by hand (so the SDK needs no zod). */
const TokenShape = z.strictObject({
  v: z.literal(1),
  p: z.array(ShardPosition).max(1024),
  r: z.record(z.string().regex(/^[dgc]_[A-Za-z0-9_-]+$/), z.number().int().nonnegative()).optional(),
});

const token = (value: unknown) => `p1.${Buffer.from(JSON.stringify(value), 'utf8').toString('base64url')}`;

// Values near the valid shape, so most runs probe a boundary rather than being obviously wrong.
const count = fc.oneof(fc.nat(), fc.integer({ min: -3, max: -1 }), fc.constant(1.5), fc.constant(2 ** 60), fc.constant('3'));
const shard = fc.oneof(
  { weight: 4, arbitrary: fc.record({ shard: count, epoch: fc.oneof(fc.string({ minLength: 0, maxLength: 70 }), fc.constant(1)), seq: count }) },
  { weight: 1, arbitrary: fc.record({ shard: count, epoch: fc.string(), seq: count, extra: fc.boolean() }) },
  { weight: 1, arbitrary: fc.anything() },
);
const rewindKey = fc.oneof(fc.constantFrom('g_1', 'd_ab-c', 'c_x_y'), fc.string({ maxLength: 8 }));
const shape = fc.record(
  {
    v: fc.oneof({ weight: 6, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(2, '1', 0) }),
    p: fc.oneof({ weight: 6, arbitrary: fc.array(shard, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.anything() }),
    r: fc.oneof(fc.dictionary(rewindKey, count, { maxKeys: 3 }), fc.anything()),
    x: fc.anything(),
  },
  { requiredKeys: [] },
);

describe('position token shape, checked without zod', () => {
  it('accepts exactly what the schema accepts', () => {
    fc.assert(
      fc.property(shape, (generated) => {
        // What survives JSON is what a token can carry (undefined keys vanish, NaN becomes null).
        const value: unknown = JSON.parse(JSON.stringify(generated));
        const schema = TokenShape.safeParse(value);
        const decoded = decodePosition(token(value));
        expect(decoded !== null).toBe(schema.success);
        if (schema.success) {
          expect(decoded).toEqual(schema.data.p);
          expect(rewindsOf(token(value))).toEqual(schema.data.r ?? {});
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses more than 1024 shards', () => {
    const p = Array.from({ length: 1025 }, (_, i) => ({ shard: i, epoch: 'e', seq: 1 }));
    expect(decodePosition(token({ v: 1, p }))).toBeNull();
    expect(decodePosition(token({ v: 1, p: p.slice(0, 1024) }))).toHaveLength(1024);
  });
});
