// Builds the SDK as a package (clients/sdk/package.json): ESM for browsers and Node
// in dist/, declarations in dist/types/. Run from the repository (it needs the
// project's node_modules): `npm run build:sdk`, or `node clients/sdk/build.mjs --out-dir <dir>`.
//
// The JavaScript is one bundle per entry with the contracts it uses inlined; it
// has no runtime dependency (zod is only named by the declarations' types).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const outArg = process.argv.indexOf('--out-dir');
const out = path.resolve(outArg > 0 ? process.argv[outArg + 1] : path.join(here, 'dist'));

fs.rmSync(out, { recursive: true, force: true });
const common = { bundle: true, format: 'esm', target: 'es2022', logLevel: 'warning', legalComments: 'none' };
await build({ ...common, entryPoints: [path.join(here, 'index.ts')], outfile: path.join(out, 'index.js'), platform: 'neutral' });
await build({ ...common, entryPoints: [path.join(here, 'node-storage.ts')], outfile: path.join(out, 'node-storage.js'), platform: 'node' });

const tsc = spawnSync(
  process.execPath,
  [
    path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
    '--ignoreConfig',
    '--declaration',
    '--emitDeclarationOnly',
    '--strict',
    '--skipLibCheck',
    '--module',
    'NodeNext',
    '--moduleResolution',
    'NodeNext',
    '--target',
    'ES2022',
    '--lib',
    'ES2023,ES2024.String,DOM',
    '--types',
    'node',
    '--rootDir',
    root,
    '--outDir',
    path.join(out, 'types'),
    path.join(here, 'index.ts'),
    path.join(here, 'node-storage.ts'),
  ],
  { stdio: 'inherit', cwd: root },
);
if (tsc.status !== 0) {
  process.stderr.write(`build:sdk: tsc failed (exit ${tsc.status ?? tsc.signal})\n`);
  process.exit(1);
}
process.stdout.write(`build:sdk: ${path.relative(root, out) || out}/ ready (index.js, node-storage.js, types/)\n`);
