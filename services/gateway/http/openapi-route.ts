import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../../runtime/errors.js';
import type { HttpRouter } from './router.js';
import { projectDir } from './web-routes.js';

/**
 * GET /v1/openapi.json: the published OpenAPI document of the HTTP API,
 * docs/contracts/openapi.json as generated from the contracts
 * (`npm run docs:contracts`; a test keeps the file equal to them). Read once;
 * a deployment without the docs answers 404.
 */
export const OPENAPI_FILE = path.join(projectDir(), 'docs', 'contracts', 'openapi.json');

export function registerOpenApiRoute(router: HttpRouter, file = OPENAPI_FILE): void {
  let document: Buffer | null = null;
  router.route('get', '/v1/openapi.json', async () => {
    if (!document) {
      try {
        document = fs.readFileSync(file);
      } catch {
        throw new AppError('not_found', 'the OpenAPI document is not installed with this gateway (docs/contracts/openapi.json)');
      }
    }
    return { status: 200, body: document, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache' } };
  });
}
