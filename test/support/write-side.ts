import type { EventLog } from '../../services/event-log/event-log.js';
import { createLogger } from '../../services/observability/logger.js';
import { ConversationCommands } from '../../services/commands/conversation-commands.js';
import type { TestPlatform } from './platform.js';

/**
 * The write side of `p` over `store` (often a wrapper that misbehaves on
 * purpose), built as a gateway builds it, for tests that drive appends
 * directly: lost races, pending duplicates.
 */
export function commandsOn(p: TestPlatform, store: EventLog, contentionBudgetMs?: number): ConversationCommands {
  const { runtime } = p.platform;
  return new ConversationCommands({
    store,
    subjects: runtime.subjects,
    ids: runtime.ids,
    log: createLogger({ level: 'silent' }),
    idempotency: { findMessage: async () => null },
    attachments: { resolve: async () => [] },
    rules: runtime.config.rules,
    ...(contentionBudgetMs !== undefined ? { contentionBudgetMs } : {}),
  });
}
