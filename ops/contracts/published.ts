import path from 'node:path';
import { z } from 'zod';
import * as analytics from '../../contracts/analytics.js';
import * as commands from '../../contracts/commands.js';
import * as errors from '../../contracts/errors.js';
import * as events from '../../contracts/events/index.js';
import * as frames from '../../contracts/frames.js';
import * as http from '../../contracts/http.js';
import * as notifications from '../../contracts/notifications.js';
import { HTTP_ROUTES, type RouteSpec } from './http-routes.js';
import { repoRoot, SHARED_TYPES } from './reference.js';
import type { JsonSchema } from './schema-doc.js';

/**
 * The machine-readable contract, generated from the zod schemas like
 * docs/reference.md: one JSON Schema (2020-12) document with every frame,
 * event and HTTP body under `$defs`, an AsyncAPI 3 document for the WebSocket
 * protocol and an OpenAPI 3.1 document for the HTTP routes, both referring to
 * the same definitions. Written to docs/contracts/ by `npm run docs:contracts`;
 * a test fails when they differ from what the contracts say.
 */

export const PUBLISHED_DIR = path.join(repoRoot, 'docs', 'contracts');
export const JSON_SCHEMA_PATH = path.join(PUBLISHED_DIR, 'parley.schema.json');
export const ASYNCAPI_PATH = path.join(PUBLISHED_DIR, 'asyncapi.json');
export const OPENAPI_PATH = path.join(PUBLISHED_DIR, 'openapi.json');

const VERSION = '1';

type Defs = Record<string, JsonSchema>;

const literal = (s: z.ZodType, key: string) => ((s as z.ZodObject).shape[key] as z.ZodLiteral<string>).value;

/** Schemas with a definition of their own: everywhere else they appear as a `$ref` to it. */
function namedSchemas(): [string, z.ZodType][] {
  const named: [string, z.ZodType][] = [...SHARED_TYPES];
  for (const union of events.ParleyEvent.options) for (const s of union.options) named.push([`Event.${literal(s, 'type')}`, s]);
  named.push(['ErrorBody', errors.ErrorBody]);
  for (const module of [http, notifications, analytics]) {
    for (const name of Object.keys(module).sort()) {
      const value = (module as Record<string, unknown>)[name];
      if (value instanceof z.ZodType && /(Request|Response|Query|Report|View|Summary)$/.test(name)) named.push([`Http.${name}`, value]);
    }
  }
  return named;
}
const NAMED = namedSchemas();
const nameOfSchema = new Map(NAMED.map(([id, s]) => [s, id] as const));

/** JSON Schema of one contract; named schemas become `$ref`s into `defs` (added there once). */
function schemaOf(schema: z.ZodType, io: 'input' | 'output', defs: Defs, self?: string): JsonSchema {
  const names = z.registry<{ id: string }>();
  for (const [id, s] of NAMED) if (id !== self && s !== schema) names.add(s, { id });
  // Transforms and refinements have no JSON Schema form: their input type stands in (the rule is in docs/reference.md).
  const js = z.toJSONSchema(schema, { metadata: names, io, unrepresentable: 'any', reused: 'inline', target: 'draft-2020-12' }) as JsonSchema & {
    $schema?: string;
  };
  delete js.$schema;
  for (const [id, def] of Object.entries(js.$defs ?? {})) defs[id] ??= def;
  delete js.$defs;
  return js;
}

/** Every definition, by stable name: `ClientFrame.send`, `ServerFrame.event`, `Event.message.sent`, `Http.HistoryResponse`. */
export function contractDefs(): Defs {
  const defs: Defs = {};
  // Requests and queries as a client sends them (defaults optional), everything else as received.
  for (const [id, s] of NAMED) defs[id] = schemaOf(s, /(Request|Query)$/.test(id) ? 'input' : 'output', defs, id);
  for (const [t, s] of Object.entries(frames.CLIENT_FRAME_SCHEMAS)) defs[`ClientFrame.${t}`] = schemaOf(s, 'input', defs);
  defs['Command'] = schemaOf(commands.Command, 'input', defs);
  for (const s of frames.ServerFrame.options) defs[`ServerFrame.${literal(s, 't')}`] = schemaOf(s, 'output', defs);
  return Object.fromEntries(Object.entries(defs).sort(([a], [b]) => a.localeCompare(b)));
}

/** Rewrites `#/$defs/X` references for a document that keeps the definitions elsewhere. */
function rebase<T>(value: T, prefix: string): T {
  return JSON.parse(JSON.stringify(value).replaceAll('"#/$defs/', `"${prefix}`)) as T;
}

export function renderJsonSchema(): object {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://parley.invalid/contracts/parley.schema.json',
    title: 'Parley contracts',
    description: 'Every WebSocket frame, event and HTTP body of Parley, generated from contracts/ (npm run docs:contracts). docs/reference.md explains each.',
    $defs: contractDefs(),
  };
}

export function renderAsyncApi(): object {
  const defs = contractDefs();
  const message = (name: string, title: string) => ({ name, title, contentType: 'application/json', payload: { $ref: `#/components/schemas/${name}` } });
  const clientFrames = Object.keys(defs).filter((k) => k.startsWith('ClientFrame.'));
  const serverFrames = Object.keys(defs).filter((k) => k.startsWith('ServerFrame.'));
  const messages = Object.fromEntries([...clientFrames, ...serverFrames].map((k) => [k, message(k, `\`${k.split('.')[1]}\` frame`)]));
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Parley WebSocket protocol',
      version: VERSION,
      description:
        'One JSON object per text frame, discriminated by `t`. Resume, continuity and the meaning of every frame: docs/protocol.md. Event payloads: `Event.*` schemas.',
    },
    defaultContentType: 'application/json',
    servers: {
      local: {
        host: '127.0.0.1:8080',
        protocol: 'ws',
        description: 'A development gateway (npm start).',
        security: [{ $ref: '#/components/securitySchemes/subprotocol' }, { $ref: '#/components/securitySchemes/query' }],
      },
    },
    channels: {
      socket: {
        address: '/v1/ws',
        title: 'The device connection',
        description: 'Optional query parameter `position`: the stored sync position, to resume from it.',
        messages: Object.fromEntries(Object.keys(messages).map((k) => [k, { $ref: `#/components/messages/${k}` }])),
      },
    },
    operations: {
      sendFrame: {
        action: 'send',
        title: 'Client to server',
        channel: { $ref: '#/channels/socket' },
        messages: clientFrames.map((k) => ({ $ref: `#/channels/socket/messages/${k}` })),
      },
      receiveFrame: {
        action: 'receive',
        title: 'Server to client',
        channel: { $ref: '#/channels/socket' },
        messages: serverFrames.map((k) => ({ $ref: `#/channels/socket/messages/${k}` })),
      },
    },
    components: {
      schemas: rebase(defs, '#/components/schemas/'),
      messages,
      securitySchemes: {
        subprotocol: {
          type: 'httpApiKey',
          name: 'Sec-WebSocket-Protocol',
          in: 'header',
          description: 'Offer `parley.v1` and `parley.bearer.<JWT>`; the server accepts `parley.v1`.',
        },
        query: { type: 'httpApiKey', name: 'token', in: 'query', description: 'The JWT as `?token=` (existing clients; URLs end up in logs).' },
      },
    },
  };
}

function parameters(route: RouteSpec, defs: Defs): object[] {
  const pathParams = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
    name,
    in: 'path',
    required: true,
    schema: route.params?.[name!] ?? { type: 'string' },
  }));
  const query = route.query ? schemaOf(route.query, 'input', defs) : null;
  const queryParams = Object.entries(query?.properties ?? {}).map(([name, schema]) => ({
    name,
    in: 'query',
    required: query?.required?.includes(name) ?? false,
    schema,
  }));
  return [...pathParams, ...queryParams];
}

function content(body: RouteSpec['body'] | RouteSpec['responses'][number], defs: Defs, io: 'input' | 'output'): object {
  if (body === 'binary') return { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } };
  if (typeof body === 'string') return { [body]: { schema: { type: 'string' } } };
  const named = nameOfSchema.get(body!);
  return { 'application/json': { schema: named ? { $ref: `#/$defs/${named}` } : schemaOf(body!, io, defs) } };
}

export function renderOpenApi(): object {
  const defs = contractDefs();
  const paths: Record<string, Record<string, object>> = {};
  for (const route of HTTP_ROUTES) {
    const responses: Record<string, object> = {};
    for (const [status, body] of Object.entries(route.responses))
      responses[status] = { description: route.responseNotes?.[Number(status)] ?? 'OK', content: content(body, defs, 'output') };
    responses.default = {
      description: 'An error: the stable `code` says which (docs/protocol.md, "Error codes").',
      content: { 'application/json': { schema: { $ref: '#/$defs/ErrorBody' } } },
    };
    const op = {
      operationId: route.operationId,
      summary: route.summary,
      ...(route.auth === 'none' ? { security: [] } : route.auth === 'admin' ? { security: [{ analyticsAdmin: [] }] } : {}),
      parameters: parameters(route, defs),
      ...(route.body ? { requestBody: { required: true, content: content(route.body, defs, 'input') } } : {}),
      responses,
    };
    (paths[route.path] ??= {})[route.method] = op;
  }
  return rebase(
    {
      openapi: '3.1.0',
      info: {
        title: 'Parley HTTP API',
        version: VERSION,
        description: 'Generated from contracts/ (npm run docs:contracts). The WebSocket protocol is in asyncapi.json; both explained in docs/protocol.md.',
      },
      servers: [{ url: 'http://127.0.0.1:8080', description: 'A development gateway (npm start).' }],
      security: [{ bearer: [] }],
      paths,
      components: {
        schemas: defs,
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          analyticsAdmin: { type: 'http', scheme: 'bearer', description: 'ANALYTICS_ADMIN_TOKEN (open in development when unset).' },
        },
      },
    },
    '#/components/schemas/',
  );
}

/** Each published file with its content, as written (stable formatting, one trailing newline). */
export function renderPublished(): [string, string][] {
  const json = (v: object) => `${JSON.stringify(v, null, 2)}\n`;
  return [
    [JSON_SCHEMA_PATH, json(renderJsonSchema())],
    [ASYNCAPI_PATH, json(renderAsyncApi())],
    [OPENAPI_PATH, json(renderOpenApi())],
  ];
}
