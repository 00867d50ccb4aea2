import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import * as contracts from '../../contracts/index.js';
import { CLIENT_FRAME_SCHEMAS, ServerFrame } from '../../contracts/index.js';
import { ERRORS_BEGIN, PROTOCOL_PATH, REFERENCE_PATH, renderReference, withErrorTable } from './reference.js';
import { renderType } from './schema-doc.js';

const protocol = fs.readFileSync(PROTOCOL_PATH, 'utf8');

describe('the generated contract documentation', () => {
  it('docs/reference.md is what the contracts say (run npm run docs:contracts after changing them)', () => {
    expect(fs.readFileSync(REFERENCE_PATH, 'utf8')).toBe(renderReference());
  });

  it('the error table in docs/protocol.md is what the contracts say', () => {
    expect(protocol).toContain(ERRORS_BEGIN);
    expect(protocol).toBe(withErrorTable(protocol));
  });

  it('names every error code, frame type and event type of the contracts', () => {
    const reference = fs.readFileSync(REFERENCE_PATH, 'utf8');
    for (const code of Object.keys(contracts.errorCatalog)) {
      expect(reference).toContain(`| \`${code}\` |`);
      expect(protocol).toContain(`| \`${code}\` |`);
    }
    for (const t of Object.keys(CLIENT_FRAME_SCHEMAS)) expect(reference).toContain(`### \`${t}\``);
    for (const option of ServerFrame.options) expect(reference).toContain(`### \`${(option.shape.t as z.ZodLiteral<string>).value}\``);
    for (const union of contracts.ParleyEvent.options) {
      for (const e of union.options) {
        const type = (e.shape.type as z.ZodLiteral<string>).value;
        expect(reference).toContain(`#### \`${type}\``);
        // The prose list of event types in protocol.md too.
        expect(protocol).toContain(`\`${type}\``);
      }
    }
  });

  it('renders constraints the schemas enforce', () => {
    expect(renderType({ type: 'string', minLength: 1, maxLength: 64, pattern: '^[a-z]+$' })).toBe('string (1–64 chars, `^[a-z]+$`)');
    expect(renderType({ type: 'integer', exclusiveMinimum: 0, maximum: Number.MAX_SAFE_INTEGER })).toBe('integer (> 0)');
    expect(renderType({ anyOf: [{ type: 'string' }, { type: 'null' }] })).toBe('string | null');
    expect(renderType({ type: 'array', items: { $ref: '#/$defs/UserId' }, maxItems: 10 })).toBe('[UserId](#userid)[] (≤ 10 items)');
  });
});

/** The JSON values of a fenced block: one or more objects, each possibly over several lines. */
function jsonValues(block: string): unknown[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < block.length; i++) {
    const c = block[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (depth++ === 0) start = i;
    } else if (c === '}' || c === ']') {
      if (--depth === 0) values.push(JSON.parse(block.slice(start, i + 1)));
    } else if (depth === 0 && !/\s/.test(c)) throw new Error(`text outside a JSON value: ${block.slice(i, i + 40)}`);
  }
  if (depth !== 0) throw new Error('unbalanced JSON block');
  return values;
}

/** Every ```json block of docs/protocol.md, with the schema named by a `<!-- schema: Name -->` line right before it. */
function examples(markdown: string): { line: number; schema: string | null; values: unknown[] }[] {
  return [...markdown.matchAll(/(?:<!-- schema: (\w+) -->\n)?```json\n([\s\S]*?)```/g)].map((m) => ({
    line: markdown.slice(0, m.index).split('\n').length,
    schema: m[1] ?? null,
    values: jsonValues(m[2]!),
  }));
}

/** Issues of a frame against its schema: a server frame, or a client frame of its `t` (typing is both). */
function frameIssues(value: Record<string, unknown>): string | null {
  const server = ServerFrame.safeParse(value);
  if (server.success) return null;
  const client = CLIENT_FRAME_SCHEMAS[String(value.t)]?.safeParse(value);
  if (client?.success) return null;
  return JSON.stringify({ asServerFrame: server.error.issues, asClientFrame: client?.error.issues ?? `no client frame "${String(value.t)}"` });
}

describe('the JSON examples of docs/protocol.md', () => {
  const found = examples(protocol);

  it('are there to check (frames, events and HTTP bodies)', () => {
    expect(found.length).toBeGreaterThanOrEqual(10);
    expect(found.flatMap((e) => e.values).length).toBeGreaterThanOrEqual(15);
  });

  it.each(found.map((e) => [e.line, e] as const))('at line %i match their schema', (_line, example) => {
    for (const value of example.values) {
      if (example.schema) {
        const schema = (contracts as Record<string, unknown>)[example.schema] as z.ZodType | undefined;
        expect(schema, `contracts export no schema ${example.schema}`).toBeDefined();
        const parsed = schema!.safeParse(value);
        expect(parsed.success ? null : parsed.error.issues).toBeNull();
      } else {
        expect(value, 'an example without a schema marker must be a frame (with `t`)').toHaveProperty('t');
        expect(frameIssues(value as Record<string, unknown>)).toBeNull();
      }
    }
  });

  it('fail when an example disagrees with its schema (the check can fail)', () => {
    expect(frameIssues({ t: 'event', entity: { kind: 'conv', id: 'g_1' }, seq: 4, prevSeq: null, pos: 'p', event: {} })).not.toBeNull();
    expect(frameIssues({ t: 'synced', status: 'complete', position: 'p' })).not.toBeNull();
    expect(frameIssues({ t: 'send', id: 'r1', conversationId: 'd_…', clientMsgId: 'm', text: 'hi' })).not.toBeNull();
    expect(() => jsonValues('{"a":1} trailing')).toThrow();
  });
});
