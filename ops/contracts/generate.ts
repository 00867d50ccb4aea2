/**
 * `npm run docs:contracts`: regenerates docs/reference.md, the error table
 * of docs/protocol.md and the published documents in docs/contracts/ (JSON
 * Schema, AsyncAPI, OpenAPI) from the zod contracts. `--check` writes nothing and
 * exits 1 when either file differs from what the contracts say.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PUBLISHED_DIR, renderPublished } from './published.js';
import { PROTOCOL_PATH, REFERENCE_PATH, renderReference, repoRoot, withErrorTable } from './reference.js';

const check = process.argv.includes('--check');
const outputs: [string, string][] = [
  [REFERENCE_PATH, renderReference()],
  [PROTOCOL_PATH, withErrorTable(fs.readFileSync(PROTOCOL_PATH, 'utf8'))],
  ...renderPublished(),
];
if (!check) fs.mkdirSync(PUBLISHED_DIR, { recursive: true });
let stale = 0;
for (const [file, wanted] of outputs) {
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  if (current === wanted) continue;
  const name = path.relative(repoRoot, file);
  if (check) {
    stale++;
    process.stderr.write(`${name} differs from the contracts: run npm run docs:contracts\n`);
  } else {
    fs.writeFileSync(file, wanted);
    process.stdout.write(`wrote ${name}\n`);
  }
}
process.exitCode = stale ? 1 : 0;
