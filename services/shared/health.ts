import type { HealthResponse } from '../../contracts/index.js';

export type HealthCheck = () => Promise<string | void>;

const CHECK_TIMEOUT_MS = 2000;

async function timed(check: HealthCheck): Promise<{ ok: boolean; latencyMs: number; detail?: string }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const detail = await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, latencyMs: Math.round(performance.now() - started), ...(detail ? { detail } : {}) };
  } catch (err) {
    return { ok: false, latencyMs: Math.round(performance.now() - started), detail: (err as Error)?.message ?? String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every named check concurrently; the platform is `ok` only when all are. */
export async function runHealthChecks(checks: Record<string, HealthCheck>): Promise<HealthResponse> {
  const names = Object.keys(checks);
  const results = await Promise.all(names.map((n) => timed(checks[n]!)));
  const out: HealthResponse = { status: 'ok', down: [], checks: {} };
  names.forEach((name, i) => {
    const r = results[i]!;
    out.checks[name] = r;
    if (!r.ok) out.down.push(name);
  });
  if (out.down.length > 0) out.status = 'down';
  return out;
}
