import type { Kysely } from 'kysely';
import type { Database } from '../read-store/schema.js';

/** A projector's open parked events by status: parked (failed) and held (waiting behind one of those). */
export async function openParkedCounts(db: Kysely<Database>, projector: string): Promise<{ parked: number; held: number }> {
  const rows = await db
    .selectFrom('parked_events')
    .select(['status', (eb) => eb.fn.countAll<string>().as('n')])
    .where('projector', '=', projector)
    .where('status', 'in', ['parked', 'held'])
    .groupBy('status')
    .execute();
  const count = (status: string) => Number(rows.find((r) => r.status === status)?.n ?? 0);
  return { parked: count('parked'), held: count('held') };
}
