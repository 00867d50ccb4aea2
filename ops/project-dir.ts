import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project's root (where package.json, node_modules and the default
 * `.parley` data dir are) for a module given by its `import.meta.url`.
 *
 * A fixed number of `..` from the module would be wrong in one of the two
 * ways the program runs: from the sources (`ops/start.ts`, through tsx) and
 * compiled (`dist/ops/start.js`, plain node), which is one level deeper. The
 * nearest directory upwards holding a package.json is right in both.
 */
export function projectDirOf(moduleUrl: string): string {
  const start = path.dirname(fileURLToPath(moduleUrl));
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return start; // no package.json anywhere up: the module's own directory
  }
}
