import type { Logger } from '../observability/logger.js';

/**
 * Node exits on an unhandled promise rejection or an uncaught exception. For a
 * process that serves strangers that turns any missed `catch` in request
 * handling into a denial of service for every user. While a gateway runs in
 * the process, both are logged at error level (with the error and its stack)
 * and counted, and the process keeps serving: every request and connection
 * has its own failure path (guard.ts), so what reaches here is a bug to fix,
 * not a reason to drop every other user.
 *
 * Installed once per process however many gateways it runs (tests start
 * several), reporting through the most recently started one's logger;
 * removed when the last one stops.
 */
type Kind = 'unhandled_rejection' | 'uncaught_exception';
interface Reporter {
  log: Logger;
  onError: ((kind: Kind) => void) | undefined;
}

const reporters: Reporter[] = [];
let remove: (() => void) | null = null;

function report(kind: Kind, msg: string, fields: Record<string, unknown>): void {
  const current = reporters.at(-1);
  current?.onError?.(kind);
  current?.log.error(msg, fields);
}

export function installProcessErrorHandlers(log: Logger, onError?: (kind: Kind) => void): () => void {
  if (!remove) {
    const onRejection = (reason: unknown) => report('unhandled_rejection', 'unhandled promise rejection (process kept running)', { err: reason });
    const onException = (err: unknown, origin: string) => report('uncaught_exception', 'uncaught exception (process kept running)', { err, origin });
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    remove = () => {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    };
  }
  const reporter: Reporter = { log, onError };
  reporters.push(reporter);
  return () => {
    const i = reporters.indexOf(reporter);
    if (i < 0) return;
    reporters.splice(i, 1);
    if (reporters.length === 0 && remove) {
      remove();
      remove = null;
    }
  };
}
