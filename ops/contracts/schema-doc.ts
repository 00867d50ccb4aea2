import { z } from 'zod';

/**
 * Renders zod contracts as Markdown, through their JSON Schema
 * (`z.toJSONSchema`): the same translation a JSON Schema, AsyncAPI or
 * OpenAPI generator would start from. Shared types named in `names` are
 * rendered as links to their own entry instead of being repeated inline.
 */

/** The subset of JSON Schema that `z.toJSONSchema` produces for the contracts. */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
  description?: string;
  $defs?: Record<string, JsonSchema>;
}

export type NamedTypes = z.core.$ZodRegistry<{ id: string }>;

/** JSON Schema of a contract as a client sends it (`io: 'input'`: defaults are optional) or receives it. */
export function jsonSchemaOf(schema: z.ZodType, names: NamedTypes, io: 'input' | 'output' = 'output'): JsonSchema {
  // Transforms and refinements have no JSON Schema form: their input type is shown, the rule is in the prose.
  return z.toJSONSchema(schema, { metadata: names, io, unrepresentable: 'any', reused: 'inline' }) as JsonSchema;
}

const SAFE = Number.MAX_SAFE_INTEGER;
/** Markdown table cells: a literal `|` would end the cell. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const anchor = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, '-');

export function typeLink(name: string): string {
  return `[${name}](#${anchor(name)})`;
}

/** A compact, TypeScript-like rendering of a schema with its constraints. */
export function renderType(s: JsonSchema): string {
  if (s.$ref) return typeLink(s.$ref.replace('#/$defs/', ''));
  const variants = s.anyOf ?? s.oneOf;
  if (variants) return variants.map(renderType).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  // `nullable()` of a primitive: one schema with several types.
  if (Array.isArray(s.type)) return s.type.map((type) => renderType({ ...s, type })).join(' | ');
  const rules: string[] = [];
  let base: string;
  switch (s.type) {
    case 'string':
      base = 'string';
      if (s.minLength !== undefined && s.maxLength !== undefined)
        rules.push(s.minLength === s.maxLength ? `${s.minLength} chars` : `${s.minLength}–${s.maxLength} chars`);
      else if (s.maxLength !== undefined) rules.push(`≤ ${s.maxLength} chars`);
      else if (s.minLength !== undefined && s.minLength > 0) rules.push(`≥ ${s.minLength} chars`);
      if (s.pattern) rules.push(`\`${s.pattern}\``);
      break;
    case 'integer':
    case 'number':
      base = s.type;
      if (s.exclusiveMinimum !== undefined) rules.push(`> ${s.exclusiveMinimum}`);
      else if (s.minimum !== undefined && s.minimum > -SAFE) rules.push(`≥ ${s.minimum}`);
      if (s.maximum !== undefined && s.maximum < SAFE) rules.push(`≤ ${s.maximum}`);
      break;
    case 'boolean':
    case 'null':
      base = s.type;
      break;
    case 'array': {
      const item = s.items ? renderType(s.items) : 'unknown';
      base = item.includes(' ') && !item.startsWith('{') ? `(${item})[]` : `${item}[]`;
      if (s.minItems !== undefined && s.maxItems !== undefined) rules.push(`${s.minItems}–${s.maxItems} items`);
      else if (s.maxItems !== undefined) rules.push(`≤ ${s.maxItems} items`);
      else if (s.minItems !== undefined) rules.push(`≥ ${s.minItems} items`);
      break;
    }
    case 'object':
      base = s.properties
        ? `{ ${Object.entries(s.properties)
            .map(([k, v]) => `${k}${s.required?.includes(k) ? '' : '?'}: ${renderType(v)}`)
            .join(', ')} }`
        : typeof s.additionalProperties === 'object'
          ? `{ [key: string]: ${renderType(s.additionalProperties)} }`
          : 'object';
      break;
    default:
      base = 'any';
  }
  if (s.default !== undefined) rules.push(`default ${JSON.stringify(s.default)}`);
  return rules.length ? `${base} (${rules.join(', ')})` : base;
}

/**
 * A field table for an object schema; `docs` gives a field's description by
 * name (from the contract's doc comments). Unions of objects get one table
 * per variant, headed by the variant's discriminating constant.
 */
export function renderFields(s: JsonSchema, docs: Record<string, string> = {}): string {
  const variants = s.oneOf ?? s.anyOf;
  if (variants && variants.every((v) => v.type === 'object')) {
    return variants
      .map((v) => {
        const tag = Object.entries(v.properties ?? {}).find(([k, p]) => p.const !== undefined && k !== 't' && k !== 'type');
        return `${tag ? `With \`${tag[0]}: ${JSON.stringify(tag[1].const)}\`:\n\n` : ''}${renderFields(v, docs)}`;
      })
      .join('\n\n');
  }
  if (s.type !== 'object' || !s.properties) return `\`${cell(renderType(s))}\``;
  const rows = Object.entries(s.properties).map(([name, field]) => {
    const required = s.required?.includes(name) ? 'yes' : 'no';
    return `| \`${name}\` | ${cell(renderType(field))} | ${required} | ${cell(docs[name] ?? '')} |`;
  });
  return ['| field | type | required | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
