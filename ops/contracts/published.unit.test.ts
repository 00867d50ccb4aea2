import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { CLIENT_FRAME_SCHEMAS, ParleyEvent, ServerFrame } from '../../contracts/index.js';
import { HTTP_ROUTES } from './http-routes.js';
import { ASYNCAPI_PATH, JSON_SCHEMA_PATH, OPENAPI_PATH, renderPublished } from './published.js';

const read = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;

/** Every `$ref` in a document, with where it was found. */
function refs(value: unknown, at = '#'): [string, string][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => refs(v, `${at}/${i}`));
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => (k === '$ref' && typeof v === 'string' ? [[v, at] as [string, string]] : refs(v, `${at}/${k}`)));
}

/** Resolves a local JSON pointer (`#/a/b`), or undefined. */
function resolve(doc: unknown, ref: string): unknown {
  return ref
    .slice(2)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), doc);
}

const eventTypes = ParleyEvent.options.flatMap((u) => u.options.map((e) => (e.shape.type as z.ZodLiteral<string>).value));
const serverTypes = ServerFrame.options.map((o) => (o.shape.t as z.ZodLiteral<string>).value);

describe('the published contract documents (docs/contracts/)', () => {
  it.each(renderPublished())('%s is what the contracts say (run npm run docs:contracts after changing them)', (file, wanted) => {
    expect(fs.readFileSync(file, 'utf8')).toBe(wanted);
  });

  it('the JSON Schema defines every client frame, server frame and event payload', () => {
    const defs = read(JSON_SCHEMA_PATH).$defs as Record<string, unknown>;
    for (const t of Object.keys(CLIENT_FRAME_SCHEMAS)) expect(defs, t).toHaveProperty([`ClientFrame.${t}`]);
    for (const t of serverTypes) expect(defs, t).toHaveProperty([`ServerFrame.${t}`]);
    for (const type of eventTypes) expect(defs, type).toHaveProperty([`Event.${type}`]);
  });

  it('AsyncAPI 3 names every frame as a message of the socket channel, in the right direction', () => {
    const doc = read(ASYNCAPI_PATH);
    expect(doc.asyncapi).toBe('3.0.0');
    expect(doc.channels.socket.address).toBe('/v1/ws');
    const sent = (doc.operations.sendFrame.messages as { $ref: string }[]).map((m) => m.$ref.split('/').pop());
    const received = (doc.operations.receiveFrame.messages as { $ref: string }[]).map((m) => m.$ref.split('/').pop());
    expect(sent.sort()).toEqual(
      Object.keys(CLIENT_FRAME_SCHEMAS)
        .map((t) => `ClientFrame.${t}`)
        .sort(),
    );
    expect(received.sort()).toEqual(serverTypes.map((t) => `ServerFrame.${t}`).sort());
  });

  it('OpenAPI 3.1 has every route of the table, each answering errors with ErrorBody', () => {
    const doc = read(OPENAPI_PATH);
    expect(doc.openapi).toBe('3.1.0');
    for (const r of HTTP_ROUTES) {
      const op = doc.paths[r.path]?.[r.method];
      expect(op, `${r.method} ${r.path}`).toBeDefined();
      expect(op.responses.default.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ErrorBody' });
      for (const name of [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]))
        expect(op.parameters.some((p: { name: string; in: string }) => p.name === name && p.in === 'path')).toBe(true);
    }
    expect(new Set(HTTP_ROUTES.map((r) => r.operationId)).size).toBe(HTTP_ROUTES.length);
  });

  it.each([JSON_SCHEMA_PATH, ASYNCAPI_PATH, OPENAPI_PATH])('every $ref in %s resolves inside it', (file) => {
    const doc = read(file);
    const broken = refs(doc).filter(([ref]) => !ref.startsWith('#/') || resolve(doc, ref) === undefined);
    expect(broken).toEqual([]);
    expect(refs(doc).length).toBeGreaterThan(50);
  });
});
