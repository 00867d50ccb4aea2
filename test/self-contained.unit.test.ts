import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * A user's clone has nothing beside it: tests, tools and the program read
 * only what the checkout holds (issue 14, point 12: a test read seeds from
 * ../shared/ and failed everywhere but on the machine it was written on).
 * Fixtures ship under test/fixtures/ or are made by the test. Markdown is
 * left out: a document may cite where a figure came from.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.parley', 'bench-results', '.bench-tmp']);
const CODE = /\.(ts|mts|js|mjs|cjs|sh|json|jsonc|ya?ml|conf|service|env)$|(^|\/)(Dockerfile|run)$/;

/** `../shared` (also with escaped backslashes), `'..', 'shared'` (path.join/resolve): a path into a directory beside the checkout. */
const OUTSIDE_CHECKOUT = /\.\.[/\\]+shared\b|['"]\.\.['"]\s*,\s*['"]shared\b/;

function files(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) files(p, out);
    } else if (CODE.test(p)) out.push(p);
  }
  return out;
}

describe('the checkout is self-contained', () => {
  it('no code, test, script or config reads a directory beside the checkout', () => {
    const self = fileURLToPath(import.meta.url);
    const offenders = files(root)
      .filter((f) => f !== self)
      .flatMap((f) =>
        fs
          .readFileSync(f, 'utf8')
          .split('\n')
          .map((line, i) => ({ line, at: `${path.relative(root, f)}:${i + 1}` }))
          .filter(({ line }) => OUTSIDE_CHECKOUT.test(line))
          .map(({ at, line }) => `${at}: ${line.trim()}`),
      );
    expect(offenders).toEqual([]);
  });

  it('the check sees the spellings that broke a fresh clone', () => {
    for (const line of [
      "fs.readFileSync(path.resolve(here, '../shared/seeds/chat.txt'))",
      "path.join(root, '..', 'shared', 'seeds')",
      'const dir = "..\\\\shared\\\\seeds"',
    ]) {
      expect(OUTSIDE_CHECKOUT.test(line), line).toBe(true);
    }
    expect(OUTSIDE_CHECKOUT.test("path.join(root, 'services', 'shared')")).toBe(false);
  });

  it('the seed chat log the search test uses ships with the tests', () => {
    expect(fs.statSync(path.join(root, 'test', 'fixtures', 'chat-log-excerpt.txt')).size).toBeGreaterThan(1000);
  });
});
