import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_ROUTES, routerKey } from '../ops/contracts/http-routes.js';
import { OPENAPI_PATH } from '../ops/contracts/published.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

/** The published OpenAPI document against a running gateway: the same routes, and served at /v1/openapi.json. */

let p: TestPlatform;
beforeAll(async () => {
  p = await startTestPlatform({ withWorkers: false });
});
afterAll(async () => {
  await p?.stop();
});

describe('the published HTTP contract', () => {
  it('lists exactly the routes the gateway serves (add a route to ops/contracts/http-routes.ts with the gateway)', () => {
    const served = p.platform.gateway.routes.map((r) => `${r.method} ${r.pattern}`).sort();
    expect(HTTP_ROUTES.map(routerKey).sort()).toEqual(served);
  });

  it('is served at /v1/openapi.json, to any origin that may use the API', async () => {
    const res = await fetch(`${p.http}/v1/openapi.json`, { headers: { origin: 'http://localhost:5173' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(await res.text()).toBe(fs.readFileSync(OPENAPI_PATH, 'utf8'));
  });
});
