import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import type { CliIO } from '../ops/cli/command.js';
import { main as cli } from '../ops/cli/main.js';
import { startPlatform, type Platform } from '../ops/platform.js';
import { startStack, type Stack } from '../ops/stack.js';
import { loadConfig, type Config } from '../services/runtime/config.js';
import { createLogger, redactUrlCredentials } from '../services/observability/logger.js';
import { connectNats, natsClientAuth } from '../services/event-log/connection.js';
import {
  EMBEDDED_NATS_USER,
  embeddedNatsPasswordFile,
  natsConnectionOptions,
  readEmbeddedNatsPassword,
  redactNatsUrl,
  splitNatsUrl,
} from '../services/event-log/credentials.js';
import { createDatabase, TEST_JWT_SECRET, uniqueNamespace } from './support/platform.js';

/**
 * The embedded nats-server requires a login (docs/security.md, "NATS
 * authentication"): its password is generated into the data dir (0600) and
 * every process of the stack, the platform and `parley` commands, reads it
 * there; nothing else on the machine gets in. No log line carries a NATS
 * password, wherever a URL with credentials appears.
 */
const projectDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-nats-auth-'));
const namespace = uniqueNamespace('na');
let databaseUrl: string;
let config: Config;
let stack: Stack;
let platform: Platform | undefined;
const logs: string[] = [];

beforeAll(async () => {
  databaseUrl = await createDatabase(namespace);
  config = loadConfig({
    PARLEY_NAMESPACE: namespace,
    PARLEY_DATA_DIR: dataDir,
    NATS_PORT: '0',
    NATS_SERVER_BIN: inject('natsBinary'),
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    PORT: '0',
    NODE_ID: '1',
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'debug',
  });
  const log = createLogger({ level: 'debug', write: (l) => logs.push(l) });
  stack = await startStack(config, log, projectDir);
  platform = await startPlatform(config, log, { natsUrl: stack.natsUrl, databaseUrl: stack.databaseUrl, withWorkers: false });
}, 60_000);

afterAll(async () => {
  await platform?.stop();
  await stack?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const port = () => stack.embedded.nats!.port;

function cliIO(env: Record<string, string>, out: string[], err: string[]): CliIO {
  return {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { PARLEY_NAMESPACE: namespace, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn', ...env },
    signal: new AbortController().signal,
  };
}

describe('the embedded nats-server', () => {
  it('keeps its password in the data dir, readable by this account only, and its config and store closed too', () => {
    const mode = (p: string) => fs.statSync(p).mode & 0o777;
    expect(mode(embeddedNatsPasswordFile(dataDir))).toBe(0o600);
    expect(mode(path.join(dataDir, 'nats', 'nats.conf'))).toBe(0o600);
    expect(mode(path.join(dataDir, 'nats'))).toBe(0o700);
    expect(readEmbeddedNatsPassword(dataDir)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fs.readFileSync(path.join(dataDir, 'nats', 'nats.conf'), 'utf8')).toContain('authorization {');
  });

  it.each([
    ['no credentials', {}],
    ['the right user with a wrong password', { user: EMBEDDED_NATS_USER, pass: 'wrong' }],
    ['another user with the right password', { user: 'intruder', pass: '' }],
    ['a token', { token: 'guess' }],
  ])('refuses a connection with %s (authorization violation)', async (_, creds) => {
    const attempt = { ...creds } as { user?: string; pass?: string; token?: string };
    if (attempt.user === 'intruder') attempt.pass = readEmbeddedNatsPassword(dataDir)!;
    await expect(connect({ servers: [`127.0.0.1:${port()}`], reconnect: false, ...attempt })).rejects.toThrow(/authorization violation/i);
  });

  it('serves the platform, which connected with the generated password', async () => {
    const health = await fetch(`http://127.0.0.1:${platform!.gateway!.port}/healthz`);
    expect(((await health.json()) as { checks: { nats: { ok: boolean } } }).checks.nats.ok).toBe(true);
    const nats = await connectNats(stack.natsUrl, 'nats-auth-test', createLogger({ level: 'silent' }), natsClientAuth(config));
    try {
      expect((await nats.jsm.getAccountInfo()).streams).toBeGreaterThan(0);
    } finally {
      await nats.nc.close();
    }
  });

  it('serves `parley` commands with no NATS settings, from the data dir; without the password file they are refused', async () => {
    const out: string[] = [];
    const err: string[] = [];
    expect(await cli(['streams', 'info'], cliIO({ PARLEY_DATA_DIR: dataDir, NATS_PORT: String(port()) }, out, err))).toBe(0);
    expect(JSON.parse(out.join('\n'))).toBeTruthy();

    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-nats-auth-empty-'));
    try {
      const refused: string[] = [];
      expect(await cli(['streams', 'info'], cliIO({ PARLEY_DATA_DIR: elsewhere, NATS_PORT: String(port()) }, [], refused))).toBe(1);
      expect(refused.join('\n')).toMatch(/authorization violation/i);
    } finally {
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('accepts the credentials as an external NATS: in NATS_URL, or NATS_USER / NATS_PASSWORD', async () => {
    const password = readEmbeddedNatsPassword(dataDir)!;
    const cases: Record<string, string>[] = [
      { NATS_URL: `nats://${EMBEDDED_NATS_USER}:${encodeURIComponent(password)}@127.0.0.1:${port()}` },
      { NATS_URL: `nats://127.0.0.1:${port()}`, NATS_USER: EMBEDDED_NATS_USER, NATS_PASSWORD: password },
    ];
    for (const env of cases) {
      const external = loadConfig({ PARLEY_DATA_DIR: path.join(dataDir, 'elsewhere'), ...env });
      const nats = await connectNats(external.nats.url!, 'nats-auth-external', createLogger({ level: 'silent' }), natsClientAuth(external));
      await nats.nc.close();
    }
  });
});

describe('NATS passwords in logs', () => {
  it('never appear in the platform log, nor in a CLI error naming the URL', async () => {
    const password = readEmbeddedNatsPassword(dataDir)!;
    expect(logs.length).toBeGreaterThan(10);
    expect(logs.filter((l) => l.includes(password))).toEqual([]);

    const err: string[] = [];
    const secret = 'cli-secret-0123456789';
    expect(await cli(['streams', 'info'], cliIO({ PARLEY_DATA_DIR: dataDir, NATS_URL: `nats://parley:${secret}@127.0.0.1:${port()}` }, [], err))).toBe(1);
    expect(err.join('\n')).toContain('nats://***@127.0.0.1');
    expect(err.join('\n')).not.toContain(secret);
  });

  it.each([
    ['a field', (log: ReturnType<typeof createLogger>, url: string) => log.info('connecting', { url })],
    ['the message', (log: ReturnType<typeof createLogger>, url: string) => log.warn(`cannot reach ${url}`)],
    ['an error', (log: ReturnType<typeof createLogger>, url: string) => log.error('failed', { err: new Error(`connect to ${url} failed`) })],
    ['a child logger base', (log: ReturnType<typeof createLogger>, url: string) => log.child({ nats: url }).info('up')],
  ])('are redacted from URLs in %s', (_, emit) => {
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', write: (l) => lines.push(l) });
    const urls = [
      'nats://parley:pw-secret-1@127.0.0.1:4222',
      'nats://a:b@h:1,nats://parley:pw-secret-1@h2:2',
      'tls://tok-secret-1@nats.example:4222',
      'postgres://postgres:pw-secret-1@127.0.0.1:5432/parley',
      'nats://parley:pw"secret-1,x\'y@127.0.0.1:4222',
      'nats://parley:p%40w-secret-1@127.0.0.1:4222',
    ];
    for (const url of urls) emit(log, url);
    expect(lines).toHaveLength(urls.length);
    for (const line of lines) expect(line).not.toMatch(/secret-1/);
    expect(lines[0]).toContain('nats://parley:***@127.0.0.1:4222');
  });
});

describe('NATS client settings', () => {
  it('split credentials out of NATS_URL, explicit settings winning', () => {
    expect(splitNatsUrl('nats://u:p%40ss@h1:4222, nats://h2:4223')).toEqual({
      servers: ['nats://h1:4222', 'nats://h2:4223'],
      auth: { user: 'u', password: 'p@ss' },
    });
    expect(splitNatsUrl('tls://tok@h:4222').auth).toEqual({ token: 'tok' });
    expect(natsConnectionOptions('nats://u:p@h:1', { user: 'v', password: 'q' })).toMatchObject({ servers: ['nats://h:1'], user: 'v', pass: 'q' });
    expect(natsConnectionOptions('nats://u:p@h:1', { token: 't' })).toMatchObject({ token: 't' });
    expect(natsConnectionOptions('nats://h:1', {}).user).toBeUndefined();
    expect(redactNatsUrl('nats://u:p@h1:1,h2:2,tok@h3:3')).toBe('nats://***@h1:1,h2:2,***@h3:3');
  });

  it('read a .creds file and the TLS files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-nats-creds-'));
    try {
      // A .creds file's shape (JWT and nkey seed blocks); the authenticator parses it when the server asks.
      const creds = path.join(dir, 'user.creds');
      fs.writeFileSync(
        creds,
        '-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.e30.sig\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\nSUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4\n------END USER NKEY SEED------\n',
      );
      const options = natsConnectionOptions('tls://h:4222', {
        credsFile: creds,
        tls: { caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'c.pem'), keyFile: path.join(dir, 'k.pem') },
      });
      expect(typeof options.authenticator).toBe('function');
      expect(options.tls).toEqual({ caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'c.pem'), keyFile: path.join(dir, 'k.pem') });
      const config = loadConfig({ NATS_URL: 'tls://h:4222', NATS_CREDS: creds, NATS_TLS_CA: 'ca.pem' }, dir);
      expect(config.nats.client).toMatchObject({ credsFile: creds, tls: { caFile: path.join(dir, 'ca.pem') } });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
