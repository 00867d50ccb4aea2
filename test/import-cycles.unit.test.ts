import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * No import cycles among the program's modules (contracts, services, ops,
 * clients): a cycle makes the load order decide whether a module sees its
 * dependency's exports, and it ties roles together that should stand alone.
 * Only imports that exist at run time count: `import type` and imports whose
 * every name is a type are erased by the compiler.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOTS = ['contracts', 'services', 'ops', 'clients'];

function sources(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'dist') sources(p, out);
    } else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative specifiers this module loads at run time. */
function runtimeImports(text: string): string[] {
  const found: string[] = [];
  const statement = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+'(\.{1,2}\/[^']+)'/g;
  for (const m of text.matchAll(statement)) {
    if (m[2]) continue; // import type / export type
    const names = /\{([^}]*)\}/.exec(m[3]!);
    // `import { type A, type B } from` is erased too; a default or namespace import next to the braces is not.
    const onlyTypes =
      names &&
      m[3]!.trim().startsWith('{') &&
      names[1]!
        .split(',')
        .map((n) => n.trim())
        .filter(Boolean)
        .every((n) => n.startsWith('type '));
    if (!onlyTypes) found.push(m[4]!);
  }
  // Side-effect imports: import './x.js';
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+'(\.{1,2}\/[^']+)'/g)) found.push(m[1]!);
  return found;
}

function resolve(from: string, spec: string): string | null {
  const base = path.resolve(path.dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, path.join(base, 'index.ts')]) {
    if (candidate.endsWith('.ts') && fs.existsSync(candidate)) return candidate;
  }
  return null;
}

function findCycles(files: string[]): string[][] {
  const graph = new Map(
    files.map((f) => [
      f,
      runtimeImports(fs.readFileSync(f, 'utf8'))
        .map((s) => resolve(f, s))
        .filter((d): d is string => d !== null),
    ]),
  );
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map((x) => path.relative(root, x)));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return cycles;
}

describe('import cycles', () => {
  it('the reader sees run-time imports and skips type-only ones', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from './b.js';",
      "import { type C, type D } from './c.js';",
      "import { type E, f } from './e.js';",
      "import G, { type H } from './g.js';",
      "export { i } from './i.js';",
      "export type { J } from './j.js';",
      "import {\n  k,\n  type L,\n} from '../k.js';",
      "import './side-effect.js';",
      "import { z } from 'zod';",
    ].join('\n');
    expect(runtimeImports(text).sort()).toEqual(['../k.js', './a.js', './e.js', './g.js', './i.js', './side-effect.js']);
  });

  it('finds a cycle when there is one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-cycle-probe-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.ts'), "import { b } from './b.js';\nexport const a = 1;\n");
      fs.writeFileSync(path.join(dir, 'b.ts'), "import { a } from './a.js';\nexport const b = a;\n");
      fs.writeFileSync(path.join(dir, 'c.ts'), "import type { a } from './a.js';\nexport const c = 1;\n");
      const cycles = findCycles(sources(dir));
      expect(cycles).toHaveLength(1);
      expect(cycles[0]!.map((f) => path.basename(f))).toEqual(['a.ts', 'b.ts', 'a.ts']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the program has none', () => {
    const files = ROOTS.filter((r) => fs.existsSync(path.join(root, r))).flatMap((r) => sources(path.join(root, r)));
    expect(files.length).toBeGreaterThan(100);
    expect(findCycles(files)).toEqual([]);
  });
});

/**
 * The folder layout is the architecture (services/README.md): a role
 * (services/<role>/, with its main.ts) may use any module, a module never
 * uses a role, and no role reaches into another. Type imports count too:
 * they tie the code together just the same.
 */
const ROLES = ['gateway', 'projector', 'membership', 'analytics', 'notifier'];

function allImports(text: string): string[] {
  return [...text.matchAll(/\bfrom\s+'(\.{1,2}\/[^']+)'|\bimport\s*\(\s*'(\.{1,2}\/[^']+)'\s*\)|\bimport\s+'(\.{1,2}\/[^']+)'/g)].map(
    (m) => m[1] ?? m[2] ?? m[3]!,
  );
}

/** `gateway` for services/gateway/..., `event-log` for services/event-log/...; null outside services/. */
function serviceFolder(file: string): string | null {
  const rel = path.relative(path.join(root, 'services'), file);
  if (rel.startsWith('..') || !rel.includes(path.sep)) return null;
  return rel.split(path.sep)[0]!;
}

function layeringViolations(): string[] {
  const out: string[] = [];
  for (const file of sources(path.join(root, 'services'))) {
    const from = serviceFolder(file);
    if (!from) continue;
    for (const spec of allImports(fs.readFileSync(file, 'utf8'))) {
      const target = resolve(file, spec);
      const to = target && serviceFolder(target);
      if (!to || to === from || !ROLES.includes(to)) continue;
      out.push(`${path.relative(root, file)} -> ${path.relative(root, target!)} (${ROLES.includes(from) ? 'role into another role' : 'module into a role'})`);
    }
  }
  return out;
}

describe('service layout', () => {
  it('every role folder has its entry point, and no shared grab bag is left', () => {
    for (const role of ROLES) expect(fs.existsSync(path.join(root, 'services', role, 'main.ts')), role).toBe(true);
    expect(fs.existsSync(path.join(root, 'services', 'shared'))).toBe(false);
  });

  it('modules never import a role, and roles never import each other', () => {
    expect(layeringViolations()).toEqual([]);
  });

  it('the check sees a module importing a role', () => {
    const probe = path.join(root, 'services', 'limits', `layering-probe-${process.pid}.ts`);
    fs.writeFileSync(probe, "import type { X } from '../gateway/service.js';\nexport type Y = X;\n");
    try {
      expect(layeringViolations().some((v) => v.includes('layering-probe') && v.includes('module into a role'))).toBe(true);
    } finally {
      fs.rmSync(probe);
    }
  });
});
