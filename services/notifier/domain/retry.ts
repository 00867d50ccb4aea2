/** How one delivery attempt ended. */
export type AttemptOutcome =
  | { outcome: 'sent' }
  /**
   * Worth trying again later (network error, timeout, 408, 425, 429, 5xx).
   * `error` is shown to the user (only what a remote party could see: a
   * status or "unreachable"); `detail` goes to the server log only.
   * `refused`: the target policy refused the address (docs/security.md); the
   * server log shows it as a warning.
   */
  | { outcome: 'retry'; error: string; detail?: string; refused?: boolean }
  /** Trying again cannot help (other 4xx, a redirect, an unusable channel). */
  | { outcome: 'failed'; error: string; detail?: string }
  /** The push service says the subscription no longer exists (404, 410): the channel is removed. */
  | { outcome: 'gone'; error: string };

/** Delay before retry number `attempt` (1 = the first retry): base, 2×base, 4×base… capped. Defaults give 1, 2, 4, 8 s. */
export function retryDelayMs(attempt: number, baseMs: number, maxDelayMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), maxDelayMs);
}

/** Classifies a receiver's HTTP answer. `pushService` marks Web Push endpoints, whose 404/410 mean "unsubscribed". */
export function classifyStatus(status: number, pushService: boolean): AttemptOutcome {
  if (status >= 200 && status < 300) return { outcome: 'sent' };
  const error = `HTTP ${status}`;
  if (pushService && (status === 404 || status === 410)) return { outcome: 'gone', error: `${error}: the subscription has expired or was removed` };
  if (status === 408 || status === 425 || status === 429 || status >= 500) return { outcome: 'retry', error };
  if (status >= 300 && status < 400) return { outcome: 'failed', error: `${error}: redirects are not followed` };
  return { outcome: 'failed', error };
}

/** What becomes of a delivery after a failed attempt: retried after a delay, or failed for good. */
export function afterFailure(
  outcome: Exclude<AttemptOutcome, { outcome: 'sent' }>,
  attempts: number,
  policy: { maxAttempts: number; retryBaseMs: number; retryMaxDelayMs: number },
): { retryInMs: number } | { final: true } {
  if (outcome.outcome !== 'retry' || attempts >= policy.maxAttempts) return { final: true };
  return { retryInMs: retryDelayMs(attempts, policy.retryBaseMs, policy.retryMaxDelayMs) };
}
