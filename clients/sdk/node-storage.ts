import fs from 'node:fs';
import path from 'node:path';
import type { PositionStorage } from './storage.js';

/** Keeps the position in a file (Node only), written atomically so a crash never leaves half a token. */
export function fileStorage(file: string): PositionStorage {
  return {
    load() {
      try {
        return fs.readFileSync(file, 'utf8').trim() || null;
      } catch {
        return null;
      }
    },
    save(position) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, position);
      fs.renameSync(tmp, file);
    },
  };
}
