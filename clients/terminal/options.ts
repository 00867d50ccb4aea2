import path from 'node:path';
import { parseArgs } from 'node:util';

export interface TerminalOptions {
  user: string;
  /** HTTP base URL of a gateway, e.g. http://127.0.0.1:8080 */
  server: string;
  /** A JWT to use instead of asking the server's dev endpoint for one. */
  token: string | null;
  /** The sync position is kept in <dataDir>/terminal/<user>.position. */
  dataDir: string;
  /** null: colours when stdout is a terminal and NO_COLOR is unset. */
  color: boolean | null;
}

export const USAGE = `usage: npm run chat -- --user <id> [--server http://127.0.0.1:8080] [--token <jwt>] [--data-dir .parley] [--no-color]

  --user, -u      who to sign in as (with --token: taken from the token when omitted)
  --server, -s    the gateway's HTTP address (default $PARLEY_SERVER or http://127.0.0.1:8080)
  --token, -t     a JWT; without it a token is requested from POST /v1/dev/token (development servers)
  --data-dir      where the sync position is kept (default $PARLEY_DATA_DIR or ./.parley)
  --no-color      plain output even on a terminal (so is NO_COLOR=1)`;

const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Parses the command line; `help` when asked for usage, `error` (with a reason) for mistakes. */
export function parseOptions(argv: string[], env: Record<string, string | undefined>): TerminalOptions | { help: true } | { error: string } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        user: { type: 'string', short: 'u' },
        server: { type: 'string', short: 's' },
        token: { type: 'string', short: 't' },
        'data-dir': { type: 'string' },
        color: { type: 'boolean' },
        'no-color': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (values.help) return { help: true };
  const token = values.token ?? null;
  const user = values.user ?? (token ? tokenSubject(token) : null);
  if (!user) return { error: token ? 'the token has no readable subject: pass --user' : '--user is required' };
  const subject = token ? tokenSubject(token) : null;
  if (subject !== null && subject !== user) return { error: `the token is for ${subject}, not ${user}` };
  if (!USER_ID.test(user)) return { error: `"${user}" is not a user id (A-Z a-z 0-9 _ -, up to 64)` };
  const server = values.server ?? env.PARLEY_SERVER ?? 'http://127.0.0.1:8080';
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return { error: `--server ${server} is not a URL (e.g. http://127.0.0.1:8080)` };
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) return { error: `--server must be an http:// or https:// address` };
  url.protocol = url.protocol === 'wss:' ? 'https:' : url.protocol === 'ws:' ? 'http:' : url.protocol;
  return {
    user,
    server: url.origin,
    token,
    dataDir: path.resolve(values['data-dir'] ?? env.PARLEY_DATA_DIR ?? '.parley'),
    color: values['no-color'] ? false : values.color ? true : null,
  };
}

/** ws(s)://host/v1/ws for an http(s) server address. */
export function websocketUrl(server: string): string {
  const url = new URL('/v1/ws', server);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}

export function positionFile(dataDir: string, user: string): string {
  return path.join(dataDir, 'terminal', `${user}.position`);
}

/** The `sub` claim of a JWT, read without verifying it (the server verifies; this only names the user). */
function tokenSubject(token: string): string | null {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof payload.sub === 'string' ? payload.sub : null;
  } catch {
    return null;
  }
}
