import {
  ConversationId,
  ConversationListQuery,
  CreateConversationRequest,
  DevTokenRequest,
  HistoryQuery,
  type ConversationListResponse,
  type CreateConversationResponse,
  type HistoryResponse,
  type TokenResponse,
} from '../../../contracts/index.js';
import type { Authenticator } from '../../shared/auth.js';
import { AppError } from '../../shared/errors.js';
import type { HealthCheck } from '../../shared/health.js';
import { runHealthChecks } from '../../shared/health.js';
import type { ConversationCommands } from '../../shared/write/conversation-commands.js';
import { parseConversationCursor, type ReadModel } from '../read-model.js';
import { parseBody, parseQuery } from './json.js';
import type { HttpContext, HttpRouter } from './router.js';

export interface RouteDeps {
  auth: Authenticator;
  commands: ConversationCommands;
  readModel: ReadModel;
  healthChecks: Record<string, HealthCheck>;
}

async function authenticate(deps: RouteDeps, ctx: HttpContext): Promise<string> {
  if (!ctx.authorization.startsWith('Bearer ')) throw new AppError('unauthenticated', 'send Authorization: Bearer <token>');
  const user = await deps.auth.verify(ctx.authorization.slice(7));
  return user.userId;
}

function conversationParam(ctx: HttpContext): string {
  const parsed = ConversationId.safeParse(ctx.params[0]);
  if (!parsed.success) throw new AppError('not_found', 'no such conversation');
  return parsed.data;
}

/** The HTTP API (docs/http-api.md). Every body in and out is a contract schema. */
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

  router.route('post', '/v1/conversations', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const request = parseBody(ctx, CreateConversationRequest);
    const body: CreateConversationResponse = await deps.commands.create(userId, request);
    return { status: body.created ? 201 : 200, body };
  });

  router.route('get', '/v1/conversations', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const query = parseQuery(ctx, ConversationListQuery);
    if (query.after !== undefined) await deps.readModel.waitFor(query.after);
    const body: ConversationListResponse = await deps.readModel.conversationsOf(userId, query.limit, parseConversationCursor(query.cursor));
    return { status: 200, body };
  });

  router.route('get', '/v1/conversations/:id/messages', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const conversationId = conversationParam(ctx);
    const query = parseQuery(ctx, HistoryQuery);
    if (query.after !== undefined) await deps.readModel.waitFor(query.after);
    // Same answer whether the conversation is missing or the user is not in it: ids leak nothing.
    if (!(await deps.readModel.isMember(conversationId, userId))) throw new AppError('not_member', 'you are not a member of this conversation');
    const body: HistoryResponse = await deps.readModel.history(conversationId, query.before ? Number(query.before) : undefined, query.limit);
    return { status: 200, body };
  });
}
