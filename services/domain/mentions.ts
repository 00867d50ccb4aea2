import type { UserId } from '../../contracts/index.js';

const MENTION = /(^|[^A-Za-z0-9_@-])@([A-Za-z0-9_-]{1,64})/g;

/** The members mentioned as `@userId` in `text`, each once, in order of first mention (at most 100). */
export function parseMentions(text: string, isMember: (userId: UserId) => boolean): UserId[] {
  const found = new Set<UserId>();
  for (const match of text.matchAll(MENTION)) {
    const user = match[2]!;
    if (isMember(user)) found.add(user);
    if (found.size >= 100) break;
  }
  return [...found];
}
