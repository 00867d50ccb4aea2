import { z } from 'zod';
import {
  Command,
  ConversationId,
  ConversationListQuery,
  CreateConversationRequest,
  HistoryQuery,
  type ConversationListResponse,
  type CreateConversationResponse,
  type HistoryResponse,
} from '../../../contracts/index.js';
import { AppError } from '../../runtime/errors.js';
import { parseBody, parseQuery } from './json.js';
import type { HttpContext, HttpRouter } from './router.js';
import { authenticate, type RouteDeps } from './route-deps.js';

const Seq = z.coerce.number().int().positive();

function conversationParam(ctx: HttpContext): string {
  const parsed = ConversationId.safeParse(ctx.params[0]);
  if (!parsed.success) throw new AppError('not_found', 'no such conversation');
  return parsed.data;
}

function seqParam(ctx: HttpContext): number {
  const parsed = Seq.safeParse(ctx.params[1]);
  if (!parsed.success) throw new AppError('not_found', 'no such message');
  return parsed.data;
}

/** Members only; the same answer whether the conversation is missing or the user is not in it. */
async function requireMember(deps: RouteDeps, conversationId: string, userId: string): Promise<void> {
  if (!(await deps.readModel.isMember(conversationId, userId))) throw new AppError('not_member', 'you are not a member of this conversation');
}

export function registerConversationRoutes(router: HttpRouter, deps: RouteDeps): void {
  router.route('post', '/v1/conversations', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const body: CreateConversationResponse = await deps.commands.create(userId, parseBody(ctx, CreateConversationRequest));
    return { status: body.created ? 201 : 200, body };
  });

  /** Any command of the WebSocket protocol, for clients and bots that prefer HTTP. */
  router.route('post', '/v1/commands', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const result = await deps.dispatcher.execute(userId, parseBody(ctx, Command));
    return { status: 200, body: result ?? {} };
  });

  router.route('get', '/v1/conversations', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const query = parseQuery(ctx, ConversationListQuery);
    if (query.after !== undefined) await deps.readModel.waitFor(query.after);
    const body: ConversationListResponse = await deps.conversations.list(userId, query.limit, query.cursor, query.archived === 'true');
    return { status: 200, body };
  });

  router.route('get', '/v1/conversations/:id/messages', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const conversationId = conversationParam(ctx);
    const query = parseQuery(ctx, HistoryQuery);
    // The position is one of this conversation's events: it is in the conversation's shard.
    if (query.after !== undefined) await deps.readModel.waitFor(query.after, deps.readModel.shardOf(conversationId));
    await requireMember(deps, conversationId, userId);
    const body: HistoryResponse = await deps.messages.history(conversationId, userId, query.before ? Number(query.before) : undefined, query.limit);
    return { status: 200, body };
  });

  router.route('get', '/v1/conversations/:id/messages/:seq/versions', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const conversationId = conversationParam(ctx);
    await requireMember(deps, conversationId, userId);
    return { status: 200, body: await deps.messages.versions(conversationId, seqParam(ctx)) };
  });

  router.route('get', '/v1/conversations/:id/messages/:seq/receipts', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const conversationId = conversationParam(ctx);
    await requireMember(deps, conversationId, userId);
    const state = await deps.commands.load(conversationId);
    if (state.kind === 'channel') throw new AppError('forbidden', 'channels do not track per-member receipts');
    const seq = seqParam(ctx);
    // The message's own position: a client asking right after it arrived live must not hear "no such message".
    if (seq <= state.version) await deps.readModel.waitFor(seq, deps.readModel.shardOf(conversationId));
    return { status: 200, body: await deps.messages.receipts(conversationId, seq) };
  });
}
