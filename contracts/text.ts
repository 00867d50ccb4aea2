import { z } from 'zod';

/** Longest message text, in Unicode code points. */
export const MAX_TEXT_CODE_POINTS = 4000;

/**
 * Text policy (documented in docs/protocol.md):
 * - stored and returned byte for byte: emoji (ZWJ sequences included), CJK,
 *   RTL scripts, zero-width joiners and marks, bidi isolates (U+2066..U+2069);
 * - rejected: U+0000 and other C0/C1 control characters except tab and line
 *   feed/carriage return, lone surrogates (not representable in UTF-8), and the
 *   legacy bidi embeddings/overrides U+202A..U+202E, whose unterminated use
 *   spoofs the order of text that follows them.
 */
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;
const FORBIDDEN_BIDI = /[\u202A-\u202E]/;

function hasLoneSurrogate(s: string): boolean {
  return !s.isWellFormed();
}

export function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export const MessageText = z
  .string()
  .refine((s) => s.trim().length > 0, { message: 'text must not be empty or only whitespace' })
  .refine((s) => codePointLength(s) <= MAX_TEXT_CODE_POINTS, {
    message: `text is limited to ${MAX_TEXT_CODE_POINTS} code points`,
  })
  .refine((s) => !hasLoneSurrogate(s), { message: 'text contains a lone surrogate (invalid Unicode)' })
  .refine((s) => !FORBIDDEN_CONTROL.test(s), { message: 'text contains a control character (U+0000-U+001F except tab/newline)' })
  .refine((s) => !FORBIDDEN_BIDI.test(s), { message: 'text contains a bidi embedding/override (U+202A-U+202E); use isolates U+2066-U+2069' });

/** Group titles follow the message text policy, but single-line and short. */
export const Title = z
  .string()
  .min(1)
  .max(200)
  .refine((s) => s.trim().length > 0, { message: 'title must not be blank' })
  .refine((s) => !hasLoneSurrogate(s) && !FORBIDDEN_CONTROL.test(s) && !/[\n\r\t]/.test(s), {
    message: 'title contains a control character or line break',
  })
  .refine((s) => !FORBIDDEN_BIDI.test(s), { message: 'title contains a bidi embedding/override (U+202A-U+202E)' });
