import type { Subjects } from '../../contracts/index.js';
import type { Config } from '../runtime/config.js';
import type { NatsHandles } from '../event-log/connection.js';
import type { Projection } from '../projection/projection.js';
import { PresenceReader } from './infra/presence-reader.js';
import { notifierProjection } from './projection.js';

/**
 * The notifier's projection as the platform runs it: the presence bucket and
 * the configured rules. The service runs it; the operator CLI re-drives the
 * notifier's parked events through it.
 */
export async function openNotifierProjection(deps: { config: Config; subjects: Subjects; nats: Pick<NatsHandles, 'js'> }): Promise<Projection> {
  const n = deps.config.notifications;
  const presence = await PresenceReader.open(deps.nats.js, deps.subjects.namespace, deps.config.presence.ttlSeconds);
  return notifierProjection({
    subjects: deps.subjects,
    presence,
    coalesceMs: n.coalesceMs,
    channelMessages: n.channelMessages,
    maxEventAgeMs: n.maxEventAgeMs,
  });
}
