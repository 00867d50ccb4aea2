import {
  NotificationListQuery,
  RegisterChannelRequest,
  type ChannelListResponse,
  type NotificationListResponse,
  type RemoveChannelResponse,
  type VapidPublicKeyResponse,
} from '../../../contracts/index.js';
import { AppError } from '../../runtime/errors.js';
import { parseBody, parseQuery } from './json.js';
import type { HttpRouter } from './router.js';
import { authenticate, type RouteDeps } from './route-deps.js';

/** Notification channels and status (docs/notifications.md). Everything is the authenticated user's own. */
export function registerNotificationRoutes(router: HttpRouter, deps: RouteDeps): void {
  const n = deps.notifications;

  router.route('post', '/v1/notifications/channels', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const body = await n.register(userId, parseBody(ctx, RegisterChannelRequest));
    return { status: body.created ? 201 : 200, body };
  });

  router.route('get', '/v1/notifications/channels', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const body: ChannelListResponse = { channels: await n.channels(userId) };
    return { status: 200, body };
  });

  router.route('post', '/v1/notifications/channels/:id/remove', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    if (!(await n.remove(userId, ctx.params[0] ?? ''))) throw new AppError('not_found', 'no such notification channel');
    const body: RemoveChannelResponse = { removed: true };
    return { status: 200, body };
  });

  router.route('get', '/v1/notifications/vapid-public-key', async (ctx) => {
    await authenticate(deps, ctx);
    const body: VapidPublicKeyResponse = { publicKey: await n.vapidPublicKey() };
    return { status: 200, body };
  });

  router.route('get', '/v1/notifications', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const body: NotificationListResponse = await n.list(userId, parseQuery(ctx, NotificationListQuery));
    return { status: 200, body };
  });
}
