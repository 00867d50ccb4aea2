import { PresenceQuery, SearchQuery, type PresenceResponse, type SearchResponse, type UnreadResponse } from '../../../contracts/index.js';
import { z } from 'zod';
import { parseQuery } from './json.js';
import type { HttpRouter } from './router.js';
import { authenticate, type RouteDeps } from './route-deps.js';

const AfterQuery = z.strictObject({ after: z.coerce.number().int().nonnegative().optional() });

export function registerUserRoutes(router: HttpRouter, deps: RouteDeps): void {
  router.route('get', '/v1/unread', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const { after } = parseQuery(ctx, AfterQuery);
    if (after !== undefined) await deps.readModel.waitFor(after);
    const body: UnreadResponse = await deps.conversations.unread(userId);
    return { status: 200, body };
  });

  router.route('get', '/v1/search', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const query = parseQuery(ctx, SearchQuery);
    // Within one conversation the position is in its shard; otherwise any shard's (waitFor without one).
    if (query.after !== undefined)
      await deps.readModel.waitFor(query.after, query.conversationId === undefined ? undefined : deps.readModel.shardOf(query.conversationId));
    const body: SearchResponse = { messages: await deps.messages.search(userId, query.q, query.conversationId, query.limit) };
    return { status: 200, body };
  });

  router.route('get', '/v1/presence', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const { userIds } = parseQuery(ctx, PresenceQuery);
    // Presence is visible only to users who share a conversation (and to oneself).
    const visible = await deps.conversations.sharingWith(userId, userIds);
    visible.add(userId);
    const body: PresenceResponse = { presence: await deps.presence.lookup(userIds.filter((u) => visible.has(u))) };
    return { status: 200, body };
  });
}
