import type { Authenticator } from '../../auth/auth.js';
import { AppError } from '../../runtime/errors.js';
import type { HealthCheck } from '../../observability/health.js';
import type { KeyedRateLimiter } from '../../limits/rate-limit.js';
import type { ConversationCommands } from '../../commands/conversation-commands.js';
import type { CommandDispatcher } from '../command-dispatcher.js';
import type { AttachmentStore } from '../infra/attachment-store.js';
import type { PresenceService } from '../infra/presence.js';
import type { ConversationQueries } from '../queries/conversation-queries.js';
import type { MessageQueries } from '../queries/message-queries.js';
import type { NotificationQueries } from '../queries/notification-queries.js';
import type { ReadModel } from '../read-model.js';
import type { HttpContext } from './router.js';

/** What every HTTP route module gets: kept apart from routes.ts, which imports the route modules. */
export interface RouteDeps {
  auth: Authenticator;
  commands: ConversationCommands;
  dispatcher: CommandDispatcher;
  readModel: ReadModel;
  conversations: ConversationQueries;
  messages: MessageQueries;
  attachments: AttachmentStore;
  presence: PresenceService;
  notifications: NotificationQueries;
  limiter: KeyedRateLimiter;
  healthChecks: Record<string, HealthCheck>;
  /** What /readyz depends on: the dependencies of the roles active in this process, asked per request (a standby may take over). */
  requiredChecks: () => readonly string[];
  maxAttachmentBytes: number;
  allowedAttachmentTypes: string[];
}

/** Authenticates the bearer token and applies the per-user HTTP rate limit. */
export async function authenticate(deps: RouteDeps, ctx: HttpContext): Promise<string> {
  if (!ctx.authorization.startsWith('Bearer ')) throw new AppError('unauthenticated', 'send Authorization: Bearer <token>');
  const { userId } = await deps.auth.verify(ctx.authorization.slice(7));
  const wait = deps.limiter.take(userId);
  if (wait > 0) throw new AppError('rate_limited', 'too many requests', { retryAfterMs: wait });
  return userId;
}
