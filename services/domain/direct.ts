import { createHash } from 'node:crypto';
import type { UserId } from '../../contracts/index.js';

/**
 * The id of the 1:1 conversation between two users is derived from the pair,
 * so "exactly one per pair" holds by construction: both users creating it at
 * once race on the same subject, and the conditional append lets one win.
 */
export function directConversationId(a: UserId, b: UserId): string {
  const [x, y] = a < b ? [a, b] : [b, a];
  const digest = createHash('sha256').update(`${x}\u0000${y}`).digest('base64url').slice(0, 32);
  return `d_${digest}`;
}
