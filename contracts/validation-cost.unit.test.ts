import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CLIENT_FRAME_SCHEMAS } from './frames.js';

/**
 * Anyone holding a token can make the server validate up to 64 KiB per frame
 * (256 KiB per HTTP body) against these schemas, on the gateway's only
 * thread. A check whose cost grows faster than its input turns one frame into
 * a denial of service: `{"t":"react","emoji":"aaaa…"}` with 64 KiB of text
 * once took gigabytes (zod ran the grapheme refine after the failed length
 * check, and V8's segmenter is quadratic in memory) and ended the process.
 * So every field of every client frame gets a long hostile value of several
 * kinds, and each parse must stay cheap.
 */
const LENGTH = 16_000; // before the fix: about 1.5 s and 250 MB for one field; 64 KiB ran the process out of memory
const BUDGET_MS = 300;

const HOSTILE: Record<string, string> = {
  ascii: 'a'.repeat(LENGTH),
  emoji: '👍🏽'.repeat(LENGTH / 4),
  'zwj sequence': '👩\u200d'.repeat(LENGTH / 3),
  'combining marks': `a${'\u0301'.repeat(LENGTH)}`,
  'regional indicators': '🇫'.repeat(LENGTH / 2),
  'lone surrogates': '\ud800'.repeat(LENGTH),
  digits: '9'.repeat(LENGTH),
};

/** The top-level field names of a frame schema (every option of a union). */
function fieldsOf(schema: z.ZodType): string[] {
  const def = schema as unknown as { shape?: Record<string, unknown>; options?: z.ZodType[] };
  if (def.shape) return Object.keys(def.shape);
  if (def.options) return [...new Set(def.options.flatMap(fieldsOf))];
  throw new Error('a client frame schema that is neither an object nor a union of objects: teach fieldsOf about it');
}

const cases = Object.entries(CLIENT_FRAME_SCHEMAS).flatMap(([t, schema]) =>
  fieldsOf(schema)
    .filter((field) => field !== 't')
    .map((field) => ({ t, field, schema })),
);

describe('validating a client frame costs time linear in its size', () => {
  it('covers every frame type', () => {
    expect(new Set(cases.map((c) => c.t))).toEqual(new Set(Object.keys(CLIENT_FRAME_SCHEMAS)));
    expect(cases.some((c) => c.t === 'react' && c.field === 'emoji')).toBe(true);
  });

  it.each(cases)('$t / $field: long hostile values are refused within the budget', ({ t, field, schema }) => {
    for (const [kind, value] of Object.entries(HOSTILE)) {
      const started = performance.now();
      const result = schema.safeParse({ t, id: 'r1', [field]: value });
      const ms = performance.now() - started;
      expect(ms, `${t}.${field} with ${LENGTH} characters of ${kind} took ${ms.toFixed(0)} ms`).toBeLessThan(BUDGET_MS);
      expect(result.success).toBe(false);
    }
  });
});
