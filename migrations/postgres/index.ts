import type { Migration } from 'kysely';
import * as m0001 from './0001_read_model.js';
import * as m0002 from './0002_parked_events.js';
import * as m0003 from './0003_conversation_model.js';
import * as m0004 from './0004_notifications.js';
import * as m0005 from './0005_log_tombstones.js';
import * as m0006 from './0006_user_last_seqs.js';

/** Every Postgres migration, in order. Names sort lexically; never rename or edit one that has shipped. */
export const postgresMigrations: Record<string, Migration> = {
  '0001_read_model': m0001,
  '0002_parked_events': m0002,
  '0003_conversation_model': m0003,
  '0004_notifications': m0004,
  '0005_log_tombstones': m0005,
  '0006_user_last_seqs': m0006,
};
