import { expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { installProcessErrorHandlers } from './process-errors.js';

/** Our listener, found by difference (vitest has its own, which must not see these synthetic errors). */
function added(event: 'unhandledRejection' | 'uncaughtException', before: unknown[]): (...args: unknown[]) => void {
  const current: unknown[] = event === 'unhandledRejection' ? process.listeners('unhandledRejection') : process.listeners('uncaughtException');
  const fresh = current.filter((l) => !before.includes(l));
  expect(fresh).toHaveLength(1);
  return fresh[0] as (...args: unknown[]) => void;
}

it('logs and counts unhandled rejections and uncaught exceptions while a gateway runs, through the latest one, and uninstalls after the last', () => {
  const lines: string[][] = [[], []];
  const kinds: string[] = [];
  const logs = lines.map((l) => createLogger({ level: 'error', write: (line) => l.push(line) }));
  const before = { rejection: process.listeners('unhandledRejection'), exception: process.listeners('uncaughtException') };
  const releaseFirst = installProcessErrorHandlers(logs[0]!, (k) => kinds.push(k));
  const releaseSecond = installProcessErrorHandlers(logs[1]!, (k) => kinds.push(k));
  const onRejection = added('unhandledRejection', before.rejection);
  const onException = added('uncaughtException', before.exception);

  onRejection(new Error('nobody caught me'), Promise.resolve());
  onException(new Error('thrown from a callback'), 'uncaughtException');
  expect(kinds).toEqual(['unhandled_rejection', 'uncaught_exception']);
  expect(lines[1]!.map((l) => JSON.parse(l).msg)).toEqual(['unhandled promise rejection (process kept running)', 'uncaught exception (process kept running)']);
  expect(lines[1]![0]).toContain('nobody caught me');

  releaseSecond();
  onRejection('a reason that is not an Error', Promise.resolve());
  expect(lines[0]).toHaveLength(1);
  releaseSecond(); // idempotent
  releaseFirst();
  expect(process.listeners('unhandledRejection')).toEqual(before.rejection);
  expect(process.listeners('uncaughtException')).toEqual(before.exception);
});
