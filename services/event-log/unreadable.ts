import type { Logger } from '../observability/logger.js';
import { LruMap } from '../limits/lru.js';
import type { MetricsRegistry } from '../observability/metrics.js';
import type { UnreadableObserver } from './event-store.js';

/**
 * Counts every unreadable event a reader skipped
 * (`parley_log_unreadable_events_total{reader}`) and warns once per event
 * and process: the write side folds a conversation again after every lost
 * race, and resumes read the same range many times, so one warning per read
 * would bury the log.
 */
export function unreadableEventsObserver(metrics: MetricsRegistry, log: Logger): UnreadableObserver {
  const counter = metrics.counter(
    'parley_log_unreadable_events_total',
    'Stored events skipped because no schema version can read them (or they are not events of their subject), by reader: write (the conversation fold), subject, range (resumes), get.',
    ['reader'],
  );
  const warned = new LruMap<number, true>(1000);
  return (reader, entry) => {
    counter.inc({ reader });
    if (warned.get(entry.seq)) return;
    warned.set(entry.seq, true);
    log.warn('unreadable event skipped; an operator can tombstone it with `parley log tombstone --seq <seq>`', { reader, ...entry });
  };
}
