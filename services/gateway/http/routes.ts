import { DevTokenRequest, type TokenResponse } from '../../../contracts/index.js';
import type { Authenticator } from '../../shared/auth.js';
import { AppError } from '../../shared/errors.js';
import type { HealthCheck } from '../../shared/health.js';
import { runHealthChecks } from '../../shared/health.js';
import type { KeyedRateLimiter } from '../../shared/rate-limit.js';
import type { ConversationCommands } from '../../shared/write/conversation-commands.js';
import type { CommandDispatcher } from '../command-dispatcher.js';
import type { AttachmentStore } from '../infra/attachment-store.js';
import type { PresenceService } from '../infra/presence.js';
import type { ConversationQueries } from '../queries/conversation-queries.js';
import type { MessageQueries } from '../queries/message-queries.js';
import type { NotificationQueries } from '../queries/notification-queries.js';
import type { ReadModel } from '../read-model.js';
import { registerAttachmentRoutes } from './attachment-routes.js';
import { registerConversationRoutes } from './conversation-routes.js';
import { registerNotificationRoutes } from './notification-routes.js';
import { parseBody } from './json.js';
import type { HttpContext, HttpRouter } from './router.js';
import { registerUserRoutes } from './user-routes.js';

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

/** The HTTP API (docs/protocol.md). Every body in and out is a contract schema. */
export function registerRoutes(router: HttpRouter, deps: RouteDeps): void {
  router.route('get', '/healthz', async () => {
    const health = await runHealthChecks(deps.healthChecks);
    return { status: health.status === 'ok' ? 200 : 503, body: health };
  });

  const issue = deps.auth.issueDevToken;
  if (issue) {
    router.route('post', '/v1/dev/token', async (ctx) => {
      const request = parseBody(ctx, DevTokenRequest);
      const { token, expiresAt } = await issue(request.userId, request.ttlSeconds ?? 86_400);
      const body: TokenResponse = { token, userId: request.userId, expiresAt };
      return { status: 200, body };
    });
  }

  registerConversationRoutes(router, deps);
  registerUserRoutes(router, deps);
  registerAttachmentRoutes(router, deps);
  registerNotificationRoutes(router, deps);
}
