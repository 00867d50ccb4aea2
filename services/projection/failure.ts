/**
 * Whether a failure is the event's fault. Only failures that would happen
 * again with the same event (bad data, a constraint, a bug in the
 * projection) count towards parking it; an unreachable or overloaded
 * Postgres says nothing about the event, so the batch is simply retried
 * later, however long the outage lasts.
 */
const TRANSIENT_SQLSTATE_CLASSES = new Set([
  '08', // connection exception
  '40', // transaction rollback (serialization failure, deadlock)
  '53', // insufficient resources
  '55', // object not in prerequisite state (lock not available)
  '57', // operator intervention (shutdown, query canceled)
  '58', // system error (I/O)
  'XX', // internal error
]);

const TRANSIENT_MESSAGE =
  /connection terminated|connection error|econnrefused|econnreset|epipe|timeout|not queryable|client has encountered a connection error|cannot use a pool after calling end/i;

/**
 * The database does not look the way the code expects (a missing table or
 * column, a missing schema): a deployment problem, never the event's. The
 * live runner retries (no parking); a rebuild stops at once.
 */
export function isEnvironmentError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && (code.startsWith('42') || code.startsWith('3F'));
}

export function isTransient(err: unknown): boolean {
  if (isEnvironmentError(err)) return true;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return TRANSIENT_SQLSTATE_CLASSES.has(code.slice(0, 2));
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true; // a Node socket error
  return TRANSIENT_MESSAGE.test(String((err as Error)?.message ?? err));
}

/** One line for the parked row and the logs. */
export function describeFailure(err: unknown): string {
  if (!(err instanceof Error)) return String(err).slice(0, 2000);
  const code = (err as { code?: unknown }).code;
  const text = `${err.name}${code !== undefined ? ` [${String(code)}]` : ''}: ${err.message}`;
  return text.slice(0, 2000);
}
