import { DevTokenRequest, type TokenResponse } from '../../../contracts/index.js';
import { healthStatusCode, runHealthChecks } from '../../observability/health.js';
import { registerAttachmentRoutes } from './attachment-routes.js';
import { registerConversationRoutes } from './conversation-routes.js';
import { registerNotificationRoutes } from './notification-routes.js';
import { parseBody } from './json.js';
import type { HttpRouter } from './router.js';
import { registerUserRoutes } from './user-routes.js';
import type { RouteDeps } from './route-deps.js';

// Re-exported: the route modules import them from route-deps.ts (importing this file back would be a cycle).
export { authenticate, type RouteDeps } from './route-deps.js';

/** The HTTP API (docs/protocol.md). Every body in and out is a contract schema. */
export function registerRoutes(router: HttpRouter, deps: RouteDeps): void {
  // One body for both: /healthz's status reflects every check, /readyz's only what this process's roles need (health.ts).
  for (const path of ['/healthz', '/readyz'] as const) {
    router.route('get', path, async () => {
      const health = await runHealthChecks(deps.healthChecks, deps.requiredChecks());
      return { status: healthStatusCode(path, health), body: health };
    });
  }

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
