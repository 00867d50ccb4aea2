import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import * as analytics from '../../contracts/analytics.js';
import * as commands from '../../contracts/commands.js';
import * as errors from '../../contracts/errors.js';
import * as events from '../../contracts/events/index.js';
import * as frames from '../../contracts/frames.js';
import * as http from '../../contracts/http.js';
import * as ids from '../../contracts/ids.js';
import * as notifications from '../../contracts/notifications.js';
import * as text from '../../contracts/text.js';
import { jsonSchemaOf, renderFields, renderType, typeLink, type NamedTypes } from './schema-doc.js';
import { readSourceDocs, type SourceDocs } from './source-docs.js';

/**
 * The generated parts of the client documentation: docs/reference.md whole,
 * and the error-code table inside docs/protocol.md. Everything is read from
 * the zod contracts (and their doc comments), so the documents cannot drift
 * from what the server validates; `npm run docs:contracts` rewrites them and
 * ops/contracts/contracts-docs.unit.test.ts fails when they differ.
 */

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const REFERENCE_PATH = path.join(repoRoot, 'docs/reference.md');
export const PROTOCOL_PATH = path.join(repoRoot, 'docs/protocol.md');
export const ERRORS_BEGIN = '<!-- generated: error codes (npm run docs:contracts) -->';
export const ERRORS_END = '<!-- end of generated error codes -->';

type Module = Record<string, unknown>;
const isSchema = (v: unknown): v is z.ZodType => v instanceof z.ZodType;

/** The exported name of a schema object in any of the modules. */
function nameOf(schema: unknown, modules: Module[]): string | undefined {
  for (const m of modules) for (const [k, v] of entries(m)) if (v === schema) return k;
  return undefined;
}

/** A module's exports in name order: a namespace object's own key order differs between Node and vitest's loader. */
function entries(m: Module): [string, unknown][] {
  return Object.keys(m)
    .sort()
    .map((k) => [k, m[k]]);
}

/** Types used in many places: defined (documented) once and referenced everywhere else, in every generated document. */
export const SHARED_TYPES: readonly [string, z.ZodType][] = [
  ['UserId', ids.UserId],
  ['ConversationId', ids.ConversationId],
  ['MessageId', ids.MessageId],
  ['ClientMsgId', ids.ClientMsgId],
  ['RequestId', ids.RequestId],
  ['MessageText', text.MessageText],
  ['Title', text.Title],
  ['Emoji', events.Emoji],
  ['AttachmentId', events.AttachmentId],
  ['AttachmentRef', events.AttachmentRef],
  ['MessageRef', events.MessageRef],
  ['ErrorCode', errors.ErrorCode],
];

/** Shared scalar and small object types: rendered once under "Shared types", linked everywhere else. */
function sharedTypes(): { names: NamedTypes; list: [string, z.ZodType][] } {
  const list = [...SHARED_TYPES];
  const names = z.registry<{ id: string }>();
  for (const [id, schema] of list) names.add(schema, { id });
  return { names, list };
}

const sourceDocs = (): SourceDocs => readSourceDocs(path.join(repoRoot, 'contracts'));

function section(title: string, description: string, body: string): string {
  return [title, description, body].filter(Boolean).join('\n\n');
}

/** Rules a refinement checks, which JSON Schema cannot express. */
const RULES: Record<string, string> = {
  MessageText:
    'At most 4000 Unicode code points, not empty or only whitespace; no control characters other than tab and line breaks, no lone surrogates, no bidi embeddings or overrides (U+202A–U+202E): the [text policy](protocol.md#text-policy).',
};

function renderShared(docs: SourceDocs, list: [string, z.ZodType][]): string {
  return list
    .map(([name, schema]) => {
      // Inline (an empty registry): the entry itself shows the whole type.
      const js = jsonSchemaOf(schema, z.registry<{ id: string }>(), 'output');
      const shape = js.type === 'object' ? renderFields(js, docs.fieldsOf(name)) : `Type: ${renderType(js)}`;
      return section(`### ${name}`, [docs.of(name), RULES[name]].filter(Boolean).join(' '), shape);
    })
    .join('\n\n');
}

/** `create` is three shapes, declared (and commented) one by one. */
const createDocs = (docs: SourceDocs) => ({ ...docs.fieldsOf('CreateDirect'), ...docs.fieldsOf('CreateGroup'), ...docs.fieldsOf('CreateChannel') });

function renderClientFrames(docs: SourceDocs, names: NamedTypes): string {
  const modules = [commands, frames] as Module[];
  return Object.entries(frames.CLIENT_FRAME_SCHEMAS)
    .map(([t, schema]) => {
      const source = t === 'create' ? commands.CreateCommand : t === 'ping' ? frames.PingFrame : commands.COMMAND_SCHEMAS.find((s) => s.shape.t.value === t);
      const name = nameOf(source, modules) ?? '';
      const fieldDocs = t === 'create' ? createDocs(docs) : docs.fieldsOf(name);
      return section(
        `### \`${t}\``,
        docs.of(name),
        renderFields(jsonSchemaOf(schema, names, 'input'), { id: 'Chosen by the client; the answer (`ack` or `error`) carries it.', ...fieldDocs }),
      );
    })
    .join('\n\n');
}

function renderServerFrames(docs: SourceDocs, names: NamedTypes): string {
  return frames.ServerFrame.options
    .map((schema) => {
      const name = nameOf(schema, [frames] as Module[]) ?? '';
      const t = (schema.shape.t as z.ZodLiteral<string>).value;
      const js = jsonSchemaOf(schema, names, 'output');
      // The event inside an event frame is documented type by type under "Events".
      if (t === 'event' && js.properties?.event) js.properties.event = { $ref: '#/$defs/Events' };
      return section(`### \`${t}\``, docs.of(name), renderFields(js, docs.fieldsOf(name)));
    })
    .join('\n\n');
}

/** Where each group of events is stored, and who sees it. */
const EVENT_GROUPS: Record<string, [string, string]> = {
  ConversationEvent: [
    'Conversation events',
    'Stored on the conversation\'s subject (`entity: {"kind":"conv"}`), seen by its members. `data.conversationId` always equals the entity\'s id.',
  ],
  UserEvent: ['User events', 'Stored on the user\'s own subject (`entity: {"kind":"user"}`), seen by all of that user\'s devices and nobody else.'],
  LogEvent: ['Log events', 'Written by operators about the log itself, on the subject of the event they concern.'],
};

function renderEvents(docs: SourceDocs, names: NamedTypes): string {
  const modules = [events] as Module[];
  const envelope = [
    '| field | type | meaning |',
    '|---|---|---|',
    '| `type` | string | what happened (below) |',
    '| `v` | integer | version of `data`; stored events of older versions are upcast before they are sent |',
    `| \`at\` | ${renderType(jsonSchemaOf(events.envelope.at, names))} | ${docs.fieldsOf('envelope').at ?? ''} |`,
    `| \`actor\` | ${typeLink('UserId')} | ${docs.fieldsOf('envelope').actor ?? ''} |`,
    '| `data` | object | the payload of the type (below) |',
  ].join('\n');
  const groups = events.ParleyEvent.options.map((union) => {
    const unionName = nameOf(union, modules) ?? 'events';
    const heading = EVENT_GROUPS[unionName] ?? unionName;
    const types = union.options.map((schema) => {
      const name = nameOf(schema, modules) ?? '';
      const type = (schema.shape.type as z.ZodLiteral<string>).value;
      const data = jsonSchemaOf(schema.shape.data as z.ZodType, names, 'output');
      return section(`#### \`${type}\``, docs.of(name), renderFields(data, docs.fieldsOf(name)));
    });
    return section(`### ${heading[0]}`, heading[1], types.join('\n\n'));
  });
  return [
    'Every event has the same envelope; `data` depends on `type`. Clients ignore types they do not know: new ones are added over time.',
    envelope,
    ...groups,
  ].join('\n\n');
}

/** The error-code table, also embedded in docs/protocol.md. */
export function renderErrorTable(): string {
  const rows = Object.entries(errors.errorCatalog).map(
    ([code, e]) => `| \`${code}\` | ${e.status} | ${e.retryable ? 'yes' : 'no'} | ${e.summary.replace(/\|/g, '\\|')} |`,
  );
  return ['| code | HTTP | retryable | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

function renderCloseCodes(docs: SourceDocs): string {
  const meaning = docs.fieldsOf('CloseCode');
  const rows = Object.entries(errors.CloseCode).map(
    ([name, code]) => `| ${code} | \`${name}\` | ${errors.shouldReconnect(code) ? 'yes' : 'no'} | ${meaning[name] ?? ''} |`,
  );
  return ['| code | name | reconnect automatically | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** Every request, query and response schema of the HTTP API; those used inside others are linked there. */
function renderHttp(docs: SourceDocs): string {
  const shared = sharedTypes().list;
  const sharedNames = new Set(shared.map(([n]) => n));
  const seen = new Set<unknown>();
  const list = [['ErrorBody', errors.ErrorBody] as [string, unknown], ...([http, notifications, analytics] as Module[]).flatMap(entries)]
    .filter(([name, v]) => isSchema(v) && !sharedNames.has(name) && /(Request|Response|Query|View|Summary|Body|Payload|Report)$/.test(name))
    .filter(([, v]) => !seen.has(v) && seen.add(v)) as [string, z.ZodType][];
  return list
    .map(([name, schema]) => {
      // Linked: the shared types and every other HTTP schema, but not this one (it is shown here in full).
      const names = z.registry<{ id: string }>();
      for (const [id, other] of [...shared, ...list]) if (other !== schema) names.add(other, { id });
      const fieldDocs = name === 'CreateConversationRequest' ? createDocs(docs) : docs.fieldsOf(name);
      return section(`### ${name}`, docs.of(name), renderFields(jsonSchemaOf(schema, names, /(Request|Query)$/.test(name) ? 'input' : 'output'), fieldDocs));
    })
    .join('\n\n');
}

/** docs/reference.md, whole. */
export function renderReference(): string {
  const docs = sourceDocs();
  const { names, list } = sharedTypes();
  return `${[
    '# Parley contract reference',
    '<!-- Generated from contracts/ by `npm run docs:contracts` (ops/contracts/). Do not edit: change the contracts and regenerate. A test fails when this file and the contracts disagree. -->',
    'Every WebSocket frame, event payload, error code and HTTP body, exactly as the server validates them (the zod schemas in `contracts/`). [protocol.md](protocol.md) explains how they fit together, with examples. "required: no" fields may be absent; times are milliseconds since the Unix epoch; linked types are under [Shared types](#shared-types).',
    '## Shared types',
    renderShared(docs, list),
    '## Client frames',
    'Client → server, one JSON object per text frame. Strict: a field not listed is an error (`invalid_frame`). The same objects without `id` are the bodies of `POST /v1/commands`.',
    renderClientFrames(docs, names),
    '## Server frames',
    'Server → client. Clients ignore fields and frame types they do not know.',
    renderServerFrames(docs, names),
    '## Events',
    renderEvents(docs, names),
    '## Error codes',
    'The `code` of error frames and HTTP error bodies ([ErrorBody](#errorbody)). Branch on `code`, never on `message`.',
    renderErrorTable(),
    '## Close codes',
    renderCloseCodes(docs),
    '## HTTP bodies',
    'Requests (`…Request`, `…Query`: query-string parameters arrive as strings and are converted) and answers of the HTTP API; routes are listed in [protocol.md](protocol.md#http-api).',
    renderHttp(docs),
  ].join('\n\n')}\n`;
}

/** docs/protocol.md with its generated error table replaced by the current one. */
export function withErrorTable(protocol: string): string {
  const begin = protocol.indexOf(ERRORS_BEGIN);
  const end = protocol.indexOf(ERRORS_END);
  if (begin < 0 || end < begin) throw new Error(`docs/protocol.md lacks the markers ${ERRORS_BEGIN} … ${ERRORS_END}`);
  return `${protocol.slice(0, begin + ERRORS_BEGIN.length)}\n${renderErrorTable()}\n${protocol.slice(end)}`;
}
