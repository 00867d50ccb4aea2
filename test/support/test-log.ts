import type { EmbeddedLog } from '../../ops/embedded/log.js';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

/** Test runs stay quiet: warn and error only, unless PARLEY_TEST_LOG=debug|info. */
function threshold(): number {
  const wanted = process.env['PARLEY_TEST_LOG'];
  return wanted && wanted in LEVELS ? LEVELS[wanted as Level] : LEVELS.warn;
}

/** A JSON-lines logger on stderr for test setup and fixtures. */
export function createTestLog(component: string): EmbeddedLog {
  const min = threshold();
  const write = (level: Level) => (msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < min) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...fields })}\n`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
