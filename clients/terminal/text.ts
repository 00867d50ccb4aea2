/**
 * Terminal text helpers: column widths of CJK and emoji, grapheme-safe
 * truncation, and removal of anything a terminal would interpret.
 */

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

export function graphemes(s: string): string[] {
  return Array.from(segmenter.segment(s), (g) => g.segment);
}

// Zero-width: combining marks, joiners, variation selectors, bidi marks and isolates, BOM.
// biome-ignore lint/suspicious/noMisleadingCharacterClass: each zero-width code point is matched alone, on purpose (a run of them is measured).
const ZERO_WIDTH = /^(?:\p{Mn}|\p{Me}|\p{Cf}|[\u200B-\u200F\u2028-\u202E\u2060-\u206F\uFE00-\uFE0F\uFEFF])+$/u;
// Shown two columns wide: emoji presentation, emoji made so by VS16, flags, keycaps.
const WIDE_EMOJI = /\p{Emoji_Presentation}|\p{Extended_Pictographic}\uFE0F|\p{Regional_Indicator}|\u20E3/u;

/** East Asian Wide and Fullwidth ranges (Unicode EastAsianWidth W/F, the parts terminals render wide). */
function isWideCodePoint(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x231a && cp <= 0x231b) ||
    (cp >= 0x2329 && cp <= 0x232a) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xa960 && cp <= 0xa97f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe10 && cp <= 0xfe19) ||
    (cp >= 0xfe30 && cp <= 0xfe6f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1b000 && cp <= 0x1b2ff) ||
    (cp >= 0x1f200 && cp <= 0x1f2ff) ||
    (cp >= 0x20000 && cp <= 0x2fffd) ||
    (cp >= 0x30000 && cp <= 0x3fffd)
  );
}

/** Columns one grapheme takes in a terminal (0, 1 or 2). */
export function graphemeWidth(g: string): number {
  if (g === '\t') return 1; // expanded to a space by sanitizeLine
  if (ZERO_WIDTH.test(g)) return 0;
  if (WIDE_EMOJI.test(g)) return 2;
  return isWideCodePoint(g.codePointAt(0) ?? 0) ? 2 : 1;
}

/** Columns a string takes in a terminal (CJK and emoji count two). */
export function displayWidth(s: string): number {
  let w = 0;
  for (const g of graphemes(s)) w += graphemeWidth(g);
  return w;
}

/** Cuts `s` to at most `width` columns, never inside a grapheme (ZWJ emoji, skin tones, flags), ending in `…` when cut. */
export function truncate(s: string, width: number): string {
  if (displayWidth(s) <= width) return s;
  let out = '';
  let w = 0;
  for (const g of graphemes(s)) {
    const gw = graphemeWidth(g);
    if (w + gw > width - 1) break;
    out += g;
    w += gw;
  }
  return out + '…';
}

/** Pads with spaces to `width` columns (by display width, so CJK columns line up). */
export function padEnd(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - displayWidth(s)));
}

// C0 and C1 controls other than tab and line feed (ESC among them), DEL, and the bidi embeddings/overrides.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E]/g;

/**
 * Text as it may be written to a terminal: line breaks normalised to `\n`,
 * every control character that could move the cursor or change colours
 * replaced (the server rejects them, but a terminal must not trust that).
 */
export function sanitize(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(UNSAFE, '\uFFFD');
}

/** One line: line breaks shown as `⏎`, tabs as spaces. */
export function sanitizeLine(text: string): string {
  return sanitize(text).replace(/\n/g, ' ⏎ ').replace(/\t/g, ' ');
}
