import fs from 'node:fs';
import path from 'node:path';

/**
 * The doc comments of the contracts (`/** … *\/` before `export const X` and
 * before the fields inside it), read from their source: zod schemas do not
 * keep comments at runtime, and the comments are where the meaning is written.
 */
export interface SourceDocs {
  /** The comment before `export const <name>` (or a module's own `const <name>`). */
  of(name: string): string;
  /** The comments before the fields inside `export const <name> = …`, by field name. */
  fieldsOf(name: string): Record<string, string>;
}

const clean = (comment: string) =>
  comment
    .split('\n')
    .map((line) => line.replace(/^\s*\*\s?/, '').trim())
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();

export function readSourceDocs(dir: string): SourceDocs {
  const files = fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .sort()
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
  const top = new Map<string, string>();
  const fields = new Map<string, Record<string, string>>();
  for (const text of files) {
    // Each declaration runs from its `export const` to the next one.
    const decls = [...text.matchAll(/^(?:export )?const (\w+)/gm)];
    decls.forEach((m, i) => {
      const name = m[1]!;
      const before = text.slice(0, m.index);
      const doc = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*$/.exec(before);
      if (doc) top.set(name, clean(doc[1]!));
      const body = text.slice(m.index, decls[i + 1]?.index ?? text.length);
      const own: Record<string, string> = {};
      for (const f of body.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*(\w+)\s*:/g)) own[f[2]!] ??= clean(f[1]!);
      fields.set(name, own);
    });
  }
  return { of: (name) => top.get(name) ?? '', fieldsOf: (name) => fields.get(name) ?? {} };
}
