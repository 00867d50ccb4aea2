import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { spawnTs, type Child } from '../lib/ipc.js';
import { BENCH_JWT_SECRET, mintToken } from '../lib/jwt.js';
import { mapLimit, type ConvSpec, type Target } from './target.js';
import { shardOf } from '../../../contracts/index.js';

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'servers', 'parley.ts');

export interface ParleyTargetOptions {
  natsUrl: string;
  databaseUrl: string;
  namespace: string;
  /** Per-process data dirs (chDB binds one per process) go under here. */
  dataDir: string;
  gateways: number;
  /** How long the read model's checkpoint must stand still before settle() returns. */
  stableMs?: number;
  /** More environment for every process (e.g. STREAM_REPLICAS=3 on a cluster). */
  env?: Record<string, string>;
}

/**
 * Parley as deployed for the benchmark: one process of workers (projector,
 * membership, analytics, notifier) and N gateway-only processes, all on the
 * shared NATS and Postgres, with the per-user rate limits lifted so the load
 * is limited by the system, not by policy.
 */
export async function startParley(o: ParleyTargetOptions): Promise<Target> {
  const env = (name: string, nodeId: number): Record<string, string> => {
    const dir = path.join(o.dataDir, name);
    fs.mkdirSync(dir, { recursive: true });
    return {
      PARLEY_NAMESPACE: o.namespace,
      PARLEY_DATA_DIR: dir,
      NATS_URL: o.natsUrl,
      DATABASE_URL: o.databaseUrl,
      HOST: '127.0.0.1',
      PORT: '0',
      NODE_ID: String(nodeId),
      AUTH_JWT_SECRET: BENCH_JWT_SECRET,
      LOG_LEVEL: process.env.BENCH_PARLEY_LOG_LEVEL ?? 'warn',
      RATE_FRAMES_PER_SECOND: '1000000',
      RATE_SENDS_PER_SECOND: '1000000',
      RATE_HTTP_PER_SECOND: '1000000',
      ...o.env,
    };
  };
  const children: Child[] = [];
  try {
    const workers = spawnTs(SERVER, 'parley-workers', { env: env('workers', 100) });
    children.push(workers);
    // Workers first: they apply migrations and create the streams before any gateway starts.
    await workers.call('start', { role: 'workers', natsUrl: o.natsUrl, databaseUrl: o.databaseUrl }, 180_000);
    const gateways = Array.from({ length: o.gateways }, (_, i) => spawnTs(SERVER, `parley-gw${i}`, { env: env(`gateway-${i}`, i + 1) }));
    children.push(...gateways);
    const started = await Promise.all(
      gateways.map((g) => g.call<{ port: number }>('start', { role: 'gateway', natsUrl: o.natsUrl, databaseUrl: o.databaseUrl }, 180_000)),
    );
    const http = `http://127.0.0.1:${started[0]!.port}`;
    const db = new pg.Pool({ connectionString: o.databaseUrl, max: 2 });
    /** The last sequence each shard's read model must reach: a conversation's creation, in its shard (STREAM_SHARDS). */
    const lastSeq = new Map<number, number>();
    const shards = Number(o.env?.STREAM_SHARDS ?? process.env.STREAM_SHARDS ?? 1);

    return {
      name: 'parley',
      urls: started.map((s) => `ws://127.0.0.1:${s.port}/v1/ws`),
      serverPids: gateways.map((g) => g.pid),
      supportPids: [workers.pid],
      async createConversations(specs: ConvSpec[]) {
        return mapLimit(specs, 16, async (spec) => {
          const [creator, ...others] = spec.members;
          const body =
            spec.kind === 'direct'
              ? { kind: 'direct', peer: others[0] }
              : spec.kind === 'group'
                ? { kind: 'group', title: 'bench group', members: others }
                : { kind: 'channel', title: 'bench channel', members: others, postPolicy: 'everyone', joinPolicy: 'invite' };
          const res = await fetch(`${http}/v1/conversations`, {
            method: 'POST',
            headers: { authorization: `Bearer ${mintToken(creator!)}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
          });
          const json = (await res.json()) as { conversationId?: string; seq?: number };
          if (!res.ok || !json.conversationId) throw new Error(`create ${spec.kind}: ${res.status} ${JSON.stringify(json)}`);
          const shard = shardOf(json.conversationId, shards);
          lastSeq.set(shard, Math.max(lastSeq.get(shard) ?? 0, json.seq ?? 0));
          return json.conversationId;
        });
      },
      async settle() {
        // Connections subscribe to what the read model lists: wait until it has applied everything
        // (the membership reactor's follow-up events included: the checkpoint must stop moving).
        let last = '';
        let stableSince = Date.now();
        const deadline = Date.now() + 300_000;
        for (;;) {
          const r = await db.query<{ shard: number; seq: string }>(
            `SELECT shard, seq FROM projector_checkpoints WHERE projector = 'read-model' ORDER BY shard`,
          );
          const at = new Map(r.rows.map((row) => [row.shard, Number(row.seq)]));
          const now = JSON.stringify([...at]);
          const reached = [...lastSeq].every(([shard, seq]) => (at.get(shard) ?? 0) >= seq);
          if (now !== last) {
            last = now;
            stableSince = Date.now();
          } else if (reached && Date.now() - stableSince > (o.stableMs ?? 1000)) return;
          if (Date.now() > deadline) throw new Error(`read model stuck at ${now} (need ${JSON.stringify([...lastSeq])})`);
          await new Promise((res) => setTimeout(res, 100));
        }
      },
      profile: {
        async start() {
          await Promise.all([gateways[0]!.call('profileStart'), workers.call('profileStart')]);
        },
        async stop(file: string) {
          // The workers' profile beside the gateway's: their CPU per send counts against the machine too.
          await Promise.all([
            gateways[0]!.call('profileStop', { file }),
            workers.call('profileStop', { file: file.replace(/\.cpuprofile$/, '-workers.cpuprofile') }),
          ]);
        },
      },
      async gc() {
        await Promise.all(gateways.map((g) => g.call('gc')));
      },
      async connections() {
        const counts = await Promise.all(gateways.map((g) => g.call<number>('connections')));
        return counts.reduce((a, b) => a + b, 0);
      },
      async stop() {
        await db.end();
        await Promise.all(gateways.map((g) => g.stop()));
        await workers.stop();
      },
    };
  } catch (err) {
    await Promise.all(children.map((c) => c.stop()));
    throw err;
  }
}
