import type { JetStreamManager } from '@nats-io/jetstream';
import type { Subjects } from '../../contracts/index.js';
import { NatsSetupRefused } from './refusal.js';

/**
 * The shard count (STREAM_SHARDS) is fixed for the life of a deployment: an
 * entity's shard is its id's hash modulo the count (contracts/shards.ts), so
 * another count would put an entity's new events in another stream than its
 * old ones, breaking its chain (per-subject sequences, expected-last-sequence
 * appends) and every device's position. A start whose count differs from the
 * shards the deployment's streams already hold events in is refused; a fresh
 * deployment (no event stream, or none that ever held an event) takes any.
 */
export interface ExistingShard {
  shard: number;
  stream: string;
  /** Last sequence the stream ever assigned (0: it never held an event). */
  lastSeq: number;
}

/** The event streams `<ns>_events_<n>` of this namespace, with their shard index and last sequence. */
export async function existingShards(jsm: JetStreamManager, subjects: Subjects): Promise<ExistingShard[]> {
  const prefix = subjects.stream(0).replace(/0$/, '');
  const found: ExistingShard[] = [];
  for await (const name of jsm.streams.names()) {
    if (!name.startsWith(prefix)) continue;
    const index = name.slice(prefix.length);
    // Exactly the name subjects.stream(n) gives, so another namespace's streams never match.
    if (!/^(0|[1-9][0-9]{0,5})$/.test(index) || subjects.stream(Number(index)) !== name) continue;
    const info = await jsm.streams.info(name).catch((err: unknown) => {
      // Deleted between the listing and now (an operator's `nats stream rm`): no longer part of the layout.
      if ((err as { code?: number }).code === 10059 || /stream not found/i.test(String(err))) return null;
      throw err;
    });
    if (info) found.push({ shard: Number(index), stream: name, lastSeq: info.state.last_seq });
  }
  return found.sort((a, b) => a.shard - b.shard);
}

/** Why `configured` shards cannot run on a deployment whose event streams are `existing`; null when they can. */
export function shardCountProblem(configured: number, existing: ExistingShard[]): string | null {
  const used = existing.filter((s) => s.lastSeq > 0);
  if (used.length === 0) return null;
  const deployed = Math.max(...existing.map((s) => s.shard)) + 1;
  if (deployed === configured) return null;
  const names = used.map((s) => s.stream).join(', ');
  return `STREAM_SHARDS=${configured} does not match this deployment: its log has ${deployed} stream shard${deployed === 1 ? '' : 's'} (events in ${names}); an entity's shard is its id's hash modulo the shard count, so changing the count in place would move entities between streams (docs/operations.md, "Stream shards")`;
}

/** Refuses the start (one line) when the configured shard count differs from the deployment's. */
export async function assertShardCount(jsm: JetStreamManager, subjects: Subjects, configured: number): Promise<void> {
  const problem = shardCountProblem(configured, await existingShards(jsm, subjects));
  if (problem) throw new NatsSetupRefused(problem);
}
