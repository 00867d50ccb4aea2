import { AttachmentId, UploadQuery, type UploadResponse } from '../../../contracts/index.js';
import { AppError } from '../../runtime/errors.js';
import { isAllowedType } from '../infra/attachment-store.js';
import { attachmentHeaders } from './attachment-headers.js';
import { parseQuery } from './json.js';
import type { HttpRouter } from './router.js';
import { authenticate, type RouteDeps } from './route-deps.js';

export function registerAttachmentRoutes(router: HttpRouter, deps: RouteDeps): void {
  router.route(
    'post',
    '/v1/attachments',
    async (ctx) => {
      const userId = await authenticate(deps, ctx);
      const { name } = parseQuery(ctx, UploadQuery);
      const contentType = ctx.contentType.split(';')[0]!.trim().toLowerCase();
      if (!isAllowedType(contentType, deps.allowedAttachmentTypes)) {
        throw new AppError(
          'invalid_request',
          `content type ${JSON.stringify(contentType)} is not accepted; allowed: ${deps.allowedAttachmentTypes.join(', ')}`,
        );
      }
      if (ctx.body.byteLength === 0) throw new AppError('invalid_request', 'the upload is empty');
      const body: UploadResponse = await deps.attachments.put(ctx.body, name, contentType, userId);
      return { status: body.deduplicated ? 200 : 201, body };
    },
    { maxBodyBytes: deps.maxAttachmentBytes },
  );

  router.route('get', '/v1/attachments/:id', async (ctx) => {
    const userId = await authenticate(deps, ctx);
    const id = AttachmentId.safeParse(ctx.params[0]);
    // Members of a conversation whose messages reference it, and whoever uploaded it first, may download.
    if (!id.success) throw new AppError('not_found', 'no such attachment');
    const found = await deps.attachments.get(id.data);
    const allowed = found && (found.meta.uploadedBy === userId || (await deps.messages.canDownload(id.data, userId)));
    if (!found || !allowed) throw new AppError('not_found', 'no such attachment');
    return {
      status: 200,
      body: found.data,
      headers: attachmentHeaders(found.meta.contentType, found.meta.name),
    };
  });
}
