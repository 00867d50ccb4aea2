import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createTestLog } from '../../test/support/test-log.js';
import { isSupportedNatsVersion, parseNatsVersion } from './nats-binary.js';
import { startNatsServer } from './nats-server.js';
import { startEmbeddedPostgres } from './postgres.js';

const log = createTestLog('embedded.int.test');
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await fs.chmod(dir, 0o711); // under root, the embedded Postgres (user postgres) must traverse it
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('nats-server version check', () => {
  it('accepts 2.10 and newer, rejects 2.9', () => {
    const v = parseNatsVersion('nats-server: v2.10.27');
    expect(v).toBe('2.10.27');
    expect(isSupportedNatsVersion(v!)).toBe(true);
    expect(isSupportedNatsVersion(parseNatsVersion('v2.11.0')!)).toBe(true);
    expect(isSupportedNatsVersion(parseNatsVersion('v2.9.10')!)).toBe(false);
    expect(parseNatsVersion('command not found')).toBeNull();
  });
});

describe('embedded nats-server', () => {
  it('keeps JetStream data across a restart on the same dataDir', async () => {
    const dataDir = await tempDir('parley-nats-persist-');
    const binary = inject('natsBinary');

    const first = await startNatsServer({ binary, dataDir, port: 0, log });
    cleanups.push(() => first.stop());
    const nc1 = await connect({ servers: first.url });
    const jsm1 = await jetstreamManager(nc1);
    await jsm1.streams.add({ name: 'PERSIST', subjects: ['persist.>'] });
    const ack = await jetstream(nc1).publish('persist.one', 'hello');
    expect(ack.seq).toBe(1);
    await nc1.close();
    await first.stop();
    await first.stop(); // idempotent

    const second = await startNatsServer({ binary, dataDir, port: 0, log });
    cleanups.push(() => second.stop());
    const nc2 = await connect({ servers: second.url });
    cleanups.push(() => nc2.close());
    const msg = await (await jetstreamManager(nc2)).streams.getMessage('PERSIST', { seq: 1 });
    expect(msg?.subject).toBe('persist.one');
    expect(msg?.string()).toBe('hello');
  });
});

describe('embedded postgres', () => {
  it('keeps rows across a restart on the same dataDir', async () => {
    const dataDir = path.join(await tempDir('parley-pg-persist-'), 'data');

    const first = await startEmbeddedPostgres({ dataDir, port: 0, log });
    cleanups.push(() => first.stop());
    const url1 = await first.ensureDatabase('persist_check');
    expect(await first.ensureDatabase('persist_check')).toBe(url1); // idempotent
    await expect(first.ensureDatabase('Bad-Name')).rejects.toThrow(/invalid database name/);
    await query(url1, "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')");
    expect(await query(first.adminUrl, 'SHOW fsync')).toEqual([{ fsync: 'on' }]);
    await first.stop();
    await first.stop(); // idempotent

    const second = await startEmbeddedPostgres({ dataDir, port: 0, log });
    cleanups.push(() => second.stop());
    const url2 = await second.ensureDatabase('persist_check');
    expect(await query(url2, 'SELECT v FROM t')).toEqual([{ v: 'kept' }]);
    expect(await query(url2, 'SELECT current_setting($$server_encoding$$) AS e')).toEqual([{ e: 'UTF8' }]);
  });

  it('the shared test server runs with the speed flags overriding the defaults', async () => {
    const rows = await query(inject('pgAdminUrl'), 'SHOW fsync');
    expect(rows).toEqual([{ fsync: 'off' }]);
  });
});
