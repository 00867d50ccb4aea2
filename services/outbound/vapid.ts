import type { Kysely } from 'kysely';
import webpush from 'web-push';
import type { Config } from '../runtime/config.js';
import type { Database } from '../read-store/schema.js';

export interface VapidKeys {
  /** Uncompressed P-256 public key, base64url: what browsers take as `applicationServerKey`. */
  publicKey: string;
  privateKey: string;
}

/**
 * The deployment's VAPID key pair. Configured keys win; otherwise a pair is
 * generated once and kept in Postgres, not under the data dir, because the
 * gateways that hand out the public key and the notifier that signs with the
 * private key may run on different machines. Rotating the keys invalidates
 * every Web Push subscription (browsers bind them to the public key).
 */
export async function loadVapidKeys(db: Kysely<Database>, config: Config): Promise<VapidKeys> {
  if (config.notifications.vapid) return config.notifications.vapid;
  const fresh = webpush.generateVAPIDKeys();
  // Two processes starting together both try; the first insert wins and both read it back.
  await db
    .insertInto('notification_vapid_keys')
    .values({ id: 1, public_key: fresh.publicKey, private_key: fresh.privateKey })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  const row = await db.selectFrom('notification_vapid_keys').select(['public_key', 'private_key']).where('id', '=', 1).executeTakeFirstOrThrow();
  return { publicKey: row.public_key, privateKey: row.private_key };
}
