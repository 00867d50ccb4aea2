import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// Makes 'vitest' resolvable for the augmentation below; erased at runtime.
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { ensureNatsServer } from '../ops/embedded/nats-binary.js';
import { startNatsServer } from '../ops/embedded/nats-server.js';
import { startEmbeddedPostgres } from '../ops/embedded/postgres.js';
import { createTestLog } from './support/test-log.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** One JetStream-enabled nats-server for the whole run, its login in the URL (`nats://user:pass@…`); tests namespace their streams. */
    natsUrl: string;
    /** Superuser URL of one Postgres for the whole run; tests create their own databases. */
    pgAdminUrl: string;
    /** For tests that need a private server (restarts, failure injection). */
    natsBinary: string;
  }
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Starts one nats-server and one Postgres, in parallel, shared by every test file. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = createTestLog('global-setup');
  const natsDir = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-test-nats-'));
  const pgDir = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-test-pg-'));
  // Under root, Postgres runs as `postgres`, which must traverse the cluster's parent (mkdtemp makes it 0700; it is ours to open).
  await fs.chmod(pgDir, 0o711);

  const natsPassword = randomBytes(24).toString('base64url');
  const natsBinary = ensureNatsServer({ projectDir: repoRoot, log });
  const [nats, pg] = await Promise.allSettled([
    // Authenticated like the product's embedded server (docs/security.md, "NATS authentication"): the tests reach it
    // with the credentials in the provided URL, as NATS_URL accepts them.
    natsBinary.then(({ path: binary }) => startNatsServer({ binary, dataDir: natsDir, port: 0, auth: { user: 'parley-test', password: natsPassword }, log })),
    startEmbeddedPostgres({
      dataDir: path.join(pgDir, 'data'),
      port: 0,
      // Durability is pointless for throwaway test data; these make DDL and commits much faster.
      extraFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=300'],
      log,
    }),
  ]);

  const teardown = async () => {
    await Promise.allSettled([nats.status === 'fulfilled' ? nats.value.stop() : undefined, pg.status === 'fulfilled' ? pg.value.stop() : undefined]);
    await Promise.all([natsDir, pgDir].map((d) => fs.rm(d, { recursive: true, force: true })));
  };
  if (nats.status === 'rejected' || pg.status === 'rejected') {
    await teardown();
    throw nats.status === 'rejected' ? nats.reason : (pg as PromiseRejectedResult).reason;
  }

  project.provide('natsUrl', nats.value.url.replace('nats://', `nats://parley-test:${natsPassword}@`));
  project.provide('pgAdminUrl', pg.value.adminUrl);
  project.provide('natsBinary', (await natsBinary).path);
  return teardown;
}
