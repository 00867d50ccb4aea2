import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnTs } from '../lib/ipc.js';
import type { ConvSpec, Target } from './target.js';

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'peer', 'server.ts');

/** The Socket.IO peer in one process (Socket.IO's own recovery needs one server, or sticky sessions and a shared adapter). */
export async function startPeer(o: { databaseUrl: string }): Promise<Target> {
  const child = spawnTs(SERVER, 'peer');
  try {
    const { port } = await child.call<{ port: number }>('start', { databaseUrl: o.databaseUrl }, 120_000);
    const base = `http://127.0.0.1:${port}`;
    return {
      name: 'peer',
      urls: [base],
      serverPids: [child.pid],
      supportPids: [],
      async createConversations(specs: ConvSpec[]) {
        const ids: string[] = [];
        for (let i = 0; i < specs.length; i += 500) {
          const res = await fetch(`${base}/setup`, { method: 'POST', body: JSON.stringify(specs.slice(i, i + 500)) });
          if (!res.ok) throw new Error(`peer setup: ${res.status} ${await res.text()}`);
          ids.push(...((await res.json()) as string[]));
        }
        return ids;
      },
      async settle() {
        // The peer stores synchronously before acknowledging: nothing to wait for.
      },
      async gc() {
        await child.call('gc');
      },
      connections: () => child.call<number>('connections'),
      stop: () => child.stop(),
    };
  } catch (err) {
    await child.stop();
    throw err;
  }
}
