import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { credsAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';

/**
 * How a Parley process proves itself to NATS. For an external cluster the
 * settings come from NATS_USER / NATS_PASSWORD, NATS_TOKEN, NATS_CREDS and
 * NATS_TLS_* (services/runtime/config.ts), or from `user:pass@` / `token@` in
 * NATS_URL; for the embedded server, from the credential file it was started
 * with (EMBEDDED_NATS_USER and `<data dir>/nats-password`).
 */
export interface NatsClientAuth {
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  /** A .creds file (user JWT and nkey seed), for clusters with decentralised (operator) accounts. */
  credsFile?: string | undefined;
  tls?: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined } | undefined;
}

/** The one user the embedded servers know; its password is the random one in the data dir. */
export const EMBEDDED_NATS_USER = 'parley';
const PASSWORD_FILE = 'nats-password';

export const embeddedNatsPasswordFile = (dataDir: string) => path.join(dataDir, PASSWORD_FILE);

/**
 * The embedded servers' password: generated once (32 random bytes) into the
 * data dir, readable by this account only (0600), like the dev JWT secret, so
 * another local account can neither read the log nor forge events. Every
 * process of this machine that shares the data dir reads the same file.
 */
export function ensureEmbeddedNatsPassword(dataDir: string): string {
  const file = embeddedNatsPasswordFile(dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  const existing = readEmbeddedNatsPassword(dataDir);
  if (existing) return existing;
  const password = randomBytes(32).toString('base64url');
  try {
    fs.writeFileSync(file, password, { mode: 0o600, flag: 'wx' });
  } catch {
    // Another process created it first: use theirs.
    return readEmbeddedNatsPassword(dataDir) ?? password;
  }
  return password;
}

/** The embedded servers' password, or undefined before a server was ever started on this data dir. */
export function readEmbeddedNatsPassword(dataDir: string): string | undefined {
  try {
    return fs.readFileSync(embeddedNatsPasswordFile(dataDir), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The embedded servers' credentials as client settings (none when no server ever ran here). */
export function embeddedNatsAuth(dataDir: string): NatsClientAuth {
  const password = readEmbeddedNatsPassword(dataDir);
  return password ? { user: EMBEDDED_NATS_USER, password } : {};
}

/**
 * Splits `nats://user:pass@host:4222,nats://host2:4222` into server URLs
 * without credentials and the credentials of the first URL that has some
 * (`token@host` is a token). nats.js itself ignores credentials in a URL.
 */
export function splitNatsUrl(url: string): { servers: string[]; auth: NatsClientAuth } {
  const auth: NatsClientAuth = {};
  const servers = url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((server) => {
      const m = /^([a-z]+:\/\/)?([^@/]*)@(.*)$/i.exec(server);
      if (!m) return server;
      const [, scheme = '', userinfo = '', rest = ''] = m;
      if (auth.user === undefined && auth.token === undefined && userinfo) {
        const colon = userinfo.indexOf(':');
        if (colon < 0) auth.token = decodeURIComponent(userinfo);
        else {
          auth.user = decodeURIComponent(userinfo.slice(0, colon));
          auth.password = decodeURIComponent(userinfo.slice(colon + 1));
        }
      }
      return scheme + rest;
    });
  return { servers, auth };
}

/** A NATS URL (or comma-separated list) fit for a log line or an error message: credentials replaced by `***`. */
export function redactNatsUrl(url: string): string {
  return url
    .split(',')
    .map((server) => server.replace(/^(\s*(?:[a-z]+:\/\/)?)[^@/]*@/i, '$1***@'))
    .join(',');
}

/**
 * Connection options for @nats-io/transport-node: the servers of `url` and
 * its credentials, where explicit settings win over credentials in the URL.
 * A .creds file wins over a password or token (the server decides which it
 * asks for; we send one kind).
 */
export function natsConnectionOptions(
  url: string,
  settings: NatsClientAuth = {},
): Pick<NodeConnectionOptions, 'servers' | 'user' | 'pass' | 'token' | 'authenticator' | 'tls'> {
  const { servers, auth: fromUrl } = splitNatsUrl(url);
  const out: ReturnType<typeof natsConnectionOptions> = { servers };
  if (settings.credsFile) {
    out.authenticator = credsAuthenticator(fs.readFileSync(settings.credsFile));
  } else if (settings.token) {
    out.token = settings.token;
  } else if (settings.user) {
    out.user = settings.user;
    out.pass = settings.password ?? '';
  } else if (fromUrl.token) {
    out.token = fromUrl.token;
  } else if (fromUrl.user) {
    out.user = fromUrl.user;
    out.pass = fromUrl.password ?? '';
  }
  const tls = settings.tls;
  if (tls && (tls.caFile || tls.certFile || tls.keyFile)) {
    out.tls = {
      ...(tls.caFile ? { caFile: tls.caFile } : {}),
      ...(tls.certFile ? { certFile: tls.certFile } : {}),
      ...(tls.keyFile ? { keyFile: tls.keyFile } : {}),
    };
  }
  return out;
}
