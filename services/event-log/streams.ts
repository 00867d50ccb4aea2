import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { Subjects } from '../../contracts/index.js';
import type { Logger } from '../observability/logger.js';
import { addStream, updateStream } from './replicas.js';
import { assertShardCount } from './shard-layout.js';

export interface StreamSettings {
  maxAgeDays: number;
  duplicateWindowSeconds: number;
  /** Largest stored event, bytes. */
  maxMsgBytes: number;
  /** STREAM_REPLICAS (1 when omitted); an existing stream is scaled to it (nats/replicas.ts). */
  replicas?: number;
  /** STREAM_SHARDS (1 when omitted); a count other than the deployment's is refused (shard-layout.ts). */
  shards?: number;
}

/** What a client needs to know about a shard to interpret positions in it. */
export interface ShardInfo {
  shard: number;
  stream: string;
  /**
   * Changes whenever the stream is recreated: a position with another epoch
   * refers to sequences that no longer exist. The stream's creation time is
   * exactly that.
   */
  epoch: string;
}

const NANOS_PER_SECOND = 1_000_000_000;

export function eventStreamConfig(subjects: Subjects, shard: number, settings: StreamSettings): Partial<StreamConfig> & { name: string } {
  const ns = subjects.namespace;
  // Shard 0 keeps the original subjects (a one-shard deployment is unchanged); shard k > 0 stores
  // `<ns>.ev.<k>.conv.<id>` (five tokens, so no overlap with shard 0's four): contracts/subjects.ts.
  const stored = subjects.storedPrefix(shard).slice(0, -1);
  return {
    name: subjects.stream(shard),
    subjects: [`${stored}.conv.*`, `${stored}.user.*`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: Math.round(settings.maxAgeDays * 86400 * NANOS_PER_SECOND),
    duplicate_window: settings.duplicateWindowSeconds * NANOS_PER_SECOND,
    max_msg_size: settings.maxMsgBytes,
    num_replicas: settings.replicas ?? 1,
    allow_direct: true,
    // Every stored event is republished to the live subject space with its
    // stream sequence and the previous sequence on the same subject, so
    // gateways get live events and can detect gaps without a consumer each.
    // Every shard republishes into the same live space (`<ns>.live.conv.<id>`); the `Nats-Stream`
    // header names the shard whose sequences the headers are.
    republish: shard === 0 ? { src: `${ns}.ev.>`, dest: `${ns}.live.>` } : { src: `${stored}.*.*`, dest: `${ns}.live.{{wildcard(1)}}.{{wildcard(2)}}` },
  };
}

/** Creates the event stream of every shard or updates their mutable settings; returns each shard's epoch, index k at k. */
export async function ensureEventStreams(jsm: JetStreamManager, subjects: Subjects, settings: StreamSettings, log: Logger): Promise<ShardInfo[]> {
  const count = settings.shards ?? 1;
  if (count !== subjects.shards) throw new Error(`STREAM_SHARDS=${count} but the subjects were built for ${subjects.shards} shards`);
  // Before anything is created: a refused start leaves the deployment as it found it.
  await assertShardCount(jsm, subjects, count);
  const shards: ShardInfo[] = [];
  for (let shard = 0; shard < count; shard++) shards.push(await ensureShardStream(jsm, subjects, shard, settings, log));
  return shards;
}

async function ensureShardStream(jsm: JetStreamManager, subjects: Subjects, shard: number, settings: StreamSettings, log: Logger): Promise<ShardInfo> {
  const config = eventStreamConfig(subjects, shard, settings);
  let info;
  try {
    info = await jsm.streams.info(config.name);
    const c = info.config;
    if (
      c.max_age !== config.max_age ||
      c.duplicate_window !== config.duplicate_window ||
      c.max_msg_size !== config.max_msg_size ||
      c.num_replicas !== config.num_replicas
    ) {
      info = await updateStream(jsm, c, {
        max_age: config.max_age!,
        duplicate_window: config.duplicate_window!,
        max_msg_size: config.max_msg_size!,
        num_replicas: config.num_replicas!,
      });
      log.info('event stream settings updated', { stream: config.name, replicas: config.num_replicas });
    }
  } catch (err) {
    if ((err as { code?: number }).code !== 10059 && !/stream not found/i.test(String(err))) throw err;
    info = await addStream(jsm, config);
    log.info('event stream created', { stream: config.name });
  }
  return { shard, stream: config.name, epoch: String(Date.parse(info.created)) };
}
