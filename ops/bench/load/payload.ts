import { nowMicros } from '../lib/histogram.js';

/**
 * Benchmark message text: `B|<sender>|<counter>|<sent at, µs>|` then filler,
 * so any receiver can tell who sent it, detect duplicates and losses, and
 * measure send-to-deliver latency without a lookup. The filler mixes
 * scripts and emoji like real chat does.
 */
export const FILLER = 'bench 你好 👋 the quick brown fox';

export function benchText(sender: number, counter: number): string {
  return `B|${sender}|${counter}|${nowMicros()}|${FILLER}`;
}

/** Parsed fields of the last successful parse (reused to keep the hot path allocation-free). */
export const parsed = { sender: 0, counter: 0, sentAt: 0 };

const MARKER = Buffer.from('"text":"B|');

/** Finds the bench fields inside a raw JSON frame without parsing the JSON. */
export function parseFrameBytes(buf: Buffer): boolean {
  const at = buf.indexOf(MARKER);
  if (at < 0) return false;
  let i = at + MARKER.length;
  let n = 0;
  let field = 0;
  for (; i < buf.length && field < 3; i++) {
    const c = buf[i]!;
    if (c === 0x7c) {
      if (field === 0) parsed.sender = n;
      else if (field === 1) parsed.counter = n;
      else parsed.sentAt = n;
      field++;
      n = 0;
    } else if (c >= 0x30 && c <= 0x39) n = n * 10 + (c - 0x30);
    else return false;
  }
  return field === 3;
}

export function parseText(text: string): boolean {
  if (!text.startsWith('B|')) return false;
  const parts = text.split('|', 4);
  parsed.sender = Number(parts[1]);
  parsed.counter = Number(parts[2]);
  parsed.sentAt = Number(parts[3]);
  return Number.isFinite(parsed.sentAt);
}
