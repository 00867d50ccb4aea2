import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureNatsServer } from '../../embedded/nats-binary.js';
import { startNatsServer, type NatsServerHandle } from '../../embedded/nats-server.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../embedded/postgres.js';

/**
 * Servers of its own for a benchmark, started with the embedded stack's
 * code and defaults (so what is measured is what `npm start` runs), in a
 * temporary directory that is removed afterwards.
 */
const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const quiet = { debug() {}, info() {}, warn: (m: string) => process.stderr.write(`warn: ${m}\n`), error: (m: string) => process.stderr.write(`error: ${m}\n`) };

export interface PrivateStack {
  nats?: NatsServerHandle;
  postgres?: EmbeddedPostgresHandle;
  databaseUrl?: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startPrivateStack(opts: { syncInterval?: string; postgres?: boolean; tag: string }): Promise<PrivateStack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `parley-bench-${opts.tag}-`));
  fs.chmodSync(dir, 0o711); // under root, the embedded Postgres (user postgres) must traverse it
  const onSignal = () => void stack.stop().finally(() => process.exit(130));
  const stack: PrivateStack = {
    dir,
    async stop() {
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.removeListener(signal, onSignal);
      await stack.postgres?.stop();
      await stack.nats?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const binary = await ensureNatsServer({ projectDir, log: quiet });
    stack.nats = await startNatsServer({
      binary: binary.path,
      dataDir: path.join(dir, 'nats'),
      port: 0,
      log: quiet,
      ...(opts.syncInterval ? { syncInterval: opts.syncInterval } : {}),
    });
    if (opts.postgres) {
      stack.postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, 'postgres'), port: 0, log: quiet });
      stack.databaseUrl = await stack.postgres.ensureDatabase('parley');
    }
    // Killed by a timeout or Ctrl-C, a benchmark must not leave its servers running (nats-server runs in its own process group).
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, onSignal);
    return stack;
  } catch (err) {
    await stack.stop().catch(() => undefined);
    throw err;
  }
}

/** The postmaster's pid (from postmaster.pid): its process tree is Postgres. */
export function postmasterPid(dataDir: string): number {
  return Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** Postgres' own CPU: the postmaster (pid from postmaster.pid) and its backends. */
export function postgresPids(dataDir: string): number[] {
  const postmaster = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pids = [postmaster];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === postmaster) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}
