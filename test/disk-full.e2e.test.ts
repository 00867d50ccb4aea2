import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startNatsServer, type NatsServerHandle } from '../ops/embedded/nats-server.js';
import { waitUntil } from './support/events.js';
import { startTestPlatform, uniqueNamespace, type TestPlatform } from './support/platform.js';
import { createTestLog } from './support/test-log.js';
import { api, TestClient } from './support/ws-client.js';

/**
 * Real full disks (small tmpfs mounts, so as root: CI runs as root), filled
 * with files: under the event log (a private nats-server's data directory)
 * and under Postgres (a tablespace holding the test database). Writes must
 * answer `unavailable` (retryable, with the reason), /healthz 503 naming the
 * store, and once the files are deleted everything must work again without
 * restarting anything, with nothing acknowledged lost (docs/operations.md,
 * "Disk full").
 */
const isRoot = process.getuid?.() === 0;
if (!isRoot) process.stderr.write('test/disk-full.e2e.test.ts skipped: mounting a tmpfs needs root (CI runs as root)\n');

const TMPFS_SIZE = '16m';

// One PARLEY_DATA_DIR for the file: chDB binds one data directory per process.
let dataDir = '';
const mounts: string[] = [];

/** Alice, connected and live, in a 1:1 with bob: where each scenario sends. */
async function directAliceBob(platform: TestPlatform, clients: TestClient[]) {
  const aliceToken = await platform.token('alice');
  const bobToken = await platform.token('bob');
  const alice = await TestClient.connect(platform.ws, aliceToken);
  clients.push(alice);
  const conv = (await api(platform.http, 'POST', '/v1/conversations', aliceToken, { kind: 'direct', peer: 'bob' })).body;
  await alice.joined(conv.conversationId);
  return { aliceToken, bobToken, alice, conv };
}

function mountTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
}

/** Takes every free byte of the file system holding `dir` (in files `freeDisk` removes). */
async function fillDisk(dir: string): Promise<void> {
  const st = await fs.statfs(dir);
  // Most of it at once; the last bytes (others may write meanwhile) block by block until none is left.
  execFileSync('fallocate', ['-l', String(Math.max(4096, st.bavail * st.bsize - 256 * 1024)), path.join(dir, 'filler')]);
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${path.join(dir, 'filler.rest')}`, 'bs=4096'], { stdio: 'ignore' });
  } catch {
    // dd stops with ENOSPC: that is the point.
  }
  expect((await fs.statfs(dir)).bavail).toBe(0);
}

async function freeDisk(dir: string): Promise<void> {
  await Promise.all(['filler', 'filler.rest'].map((f) => fs.rm(path.join(dir, f), { force: true })));
}

/** Lazy unmount: detaches even if something still holds a file open, so no mount outlives the run. */
function unmountTmpfs(dir: string): void {
  if (!mounts.includes(dir)) return;
  mounts.splice(mounts.indexOf(dir), 1);
  execFileSync('umount', ['-l', dir]);
}

beforeAll(async () => {
  if (!isRoot) return;
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-disk-full-'));
  // Traversable (not listable) by the Postgres server's own user, which must reach its tablespace in here.
  await fs.chmod(dataDir, 0o711);
});

afterAll(async () => {
  for (const dir of [...mounts]) unmountTmpfs(dir);
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
}, 30_000);

describe.skipIf(!isRoot)('a full disk under the event log', () => {
  let natsDir = '';
  let nats: NatsServerHandle | undefined;
  let p: TestPlatform | undefined;
  const clients: TestClient[] = [];
  const filler = () => path.join(natsDir, 'filler');

  beforeAll(async () => {
    // The layout of the embedded stack: <PARLEY_DATA_DIR>/nats holds the JetStream store.
    natsDir = path.join(dataDir, 'nats');
    await fs.mkdir(natsDir);
    mountTmpfs(natsDir, TMPFS_SIZE);
    nats = await startNatsServer({ binary: inject('natsBinary'), dataDir: natsDir, port: 0, log: createTestLog('disk-full-nats') });
    p = await startTestPlatform({
      natsUrl: nats.url,
      env: { PARLEY_DATA_DIR: dataDir, HEALTH_MIN_FREE_DISK_MB: '1', RATE_SENDS_PER_SECOND: '1000', RATE_FRAMES_PER_SECOND: '1000' },
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await p?.stop();
    await nats?.stop();
    unmountTmpfs(natsDir);
  }, 30_000);

  it('lets the server size JetStream by the disk, not by the free space at start', async () => {
    const st = await fs.statfs(natsDir);
    const conf = await fs.readFile(path.join(natsDir, 'nats.conf'), 'utf8');
    expect(conf).toContain(`max_file_store: ${st.blocks * st.bsize}`);
  });

  it('answers unavailable with the reason, reports the store on /healthz, and recovers by itself when space returns', async () => {
    const platform = p!;
    const { aliceToken, bobToken, alice, conv } = await directAliceBob(platform, clients);

    const acked: string[] = [];
    let sends = 0;
    const send = (text: string) => alice.send(conv.conversationId, text, `m${++sends}`);
    for (let i = 0; i < 5; i++) {
      const frame = await send(`before ${i}`);
      expect(frame.t).toBe('ack');
      acked.push(`before ${i}`);
    }
    await waitUntil(async () => (await api(platform.http, 'GET', '/healthz')).status === 200, 20_000, '/healthz 200 before the disk fills');
    const bobBefore = await TestClient.connect(platform.ws, bobToken);
    const firstPosition = String((await bobBefore.next((f) => f.t === 'synced', 10_000)).position);
    await bobBefore.close();

    await fillDisk(natsDir);

    // The log's last block page may still take a few events; then every send is refused.
    let refusal: Record<string, unknown> | undefined;
    let refusedText = '';
    for (let i = 0; i < 200 && !refusal; i++) {
      const text = `while full ${i} ${'x'.repeat(1500)}`;
      const frame = await send(text);
      if (frame.t === 'ack') acked.push(text);
      else [refusal, refusedText] = [frame, text];
    }
    expect(refusal).toMatchObject({ t: 'error', code: 'unavailable', retryable: true });
    expect(String(refusal!.message)).toMatch(/event log.*(storage full|no space left)/i);
    expect(String(refusal!.message)).not.toContain(natsDir); // the reason, not the server's file paths
    // Its retry while still full is refused the same way (a smaller event might still fit in the last page).
    expect(await alice.send(conv.conversationId, refusedText, `m${sends}`)).toMatchObject({ t: 'error', code: 'unavailable', retryable: true });

    const health = await api(platform.http, 'GET', '/healthz');
    expect(health.status).toBe(503);
    expect(health.body.status).toBe('degraded');
    expect(health.body.down).toContain('nats');
    expect(health.body.down).not.toContain('postgres');
    expect(health.body.checks.nats.ok).toBe(false);
    expect(health.body.checks.nats.detail).toMatch(/full/i);

    // Reads keep working: a device connects and resumes, history is served.
    const bob = await TestClient.connect(platform.ws, bobToken, firstPosition);
    clients.push(bob);
    const synced = await bob.next((f) => f.t === 'synced', 10_000);
    expect(synced).toMatchObject({ status: 'complete' });
    expect((await api(platform.http, 'GET', `/v1/conversations/${conv.conversationId}/messages?limit=5`, bobToken)).status).toBe(200);

    const upload = await fetch(`${platform.http}/v1/attachments?name=full.bin`, {
      method: 'POST',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/octet-stream' },
      body: randomBytes(64 * 1024),
    });
    expect(upload.status).toBe(503);
    const uploadBody = (await upload.json()) as Record<string, unknown>;
    expect(uploadBody).toMatchObject({ code: 'unavailable', retryable: true });
    expect(String(uploadBody.message)).toMatch(/attachment store.*(storage full|no space left|insufficient)/i);

    // Space returns: nothing is restarted.
    await freeDisk(natsDir);
    const after = await send('after the disk was freed');
    expect(after.t).toBe('ack');
    acked.push('after the disk was freed');
    await waitUntil(async () => (await api(platform.http, 'GET', '/healthz')).status === 200, 20_000, '/healthz back to 200');
    const healthy = await api(platform.http, 'GET', '/healthz');
    expect(healthy.body).toMatchObject({ status: 'ok', down: [] });
    const retried = await fetch(`${platform.http}/v1/attachments?name=ok.bin`, {
      method: 'POST',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/octet-stream' },
      body: randomBytes(64 * 1024),
    });
    expect(retried.status).toBe(201);

    // Nothing acknowledged was lost: every acked send is in the log, once, and in bob's history.
    const inLog: string[] = [];
    for await (const stored of platform.platform.runtime.store.readSubject(platform.platform.runtime.subjects.conv(conv.conversationId), 0)) {
      if (stored.event.type === 'message.sent') inLog.push(stored.event.data.text);
    }
    expect(inLog).toEqual(acked);
    await waitUntil(
      async () =>
        (await api(platform.http, 'GET', `/v1/conversations/${conv.conversationId}/messages?limit=200`, bobToken)).body.messages?.length === acked.length,
      20_000,
      'the read model to catch up',
    );
    const history = await api(platform.http, 'GET', `/v1/conversations/${conv.conversationId}/messages?limit=200`, bobToken);
    expect(history.body.messages.map((m: { text: string }) => m.text)).toEqual([...acked].reverse());
  }, 90_000);

  it('accepts writes again once space is freed even when nats-server started on a nearly full disk', async () => {
    // Left to itself nats-server would cap JetStream at 75% of the space free at its start, for its
    // whole life: it would refuse writes with a quarter of this disk free, and still after space returns.
    const platform = p!;
    const port = nats!.port;
    await nats!.stop();
    const st = await fs.statfs(natsDir);
    execFileSync('fallocate', ['-l', String(st.bavail * st.bsize - 2 * 1024 * 1024), filler()]);
    nats = await startNatsServer({ binary: inject('natsBinary'), dataDir: natsDir, port, log: createTestLog('disk-full-nats') });
    const { runtime } = platform.platform;
    await waitUntil(async () => (await runtime.nats.jsm.streams.info(runtime.shards[0]!.stream)).state.last_seq > 0, 20_000, 'the platform to reconnect');

    const aliceToken = await platform.token('alice');
    const conv = (await api(platform.http, 'POST', '/v1/conversations', aliceToken, { kind: 'group', title: 'nearly full', members: ['bob'] })).body;
    const alice = await TestClient.connect(platform.ws, aliceToken);
    clients.push(alice);
    const acked: string[] = [];
    let refusal: Record<string, unknown> | undefined;
    for (let i = 0; i < 1000 && !refusal; i++) {
      const text = `${i} ${'y'.repeat(3900)}`;
      const frame = await alice.send(conv.conversationId, text, `n${i}`);
      if (frame.t === 'ack') acked.push(text);
      else refusal = frame;
    }
    expect(refusal).toMatchObject({ t: 'error', code: 'unavailable', retryable: true });
    // Refused because the disk is full, not because of a limit taken at start.
    const full = await fs.statfs(natsDir);
    expect(full.bavail * full.bsize).toBeLessThan(256 * 1024);
    expect(acked.length).toBeGreaterThan(100);

    await fs.rm(filler());
    const after = await alice.send(conv.conversationId, 'room again', 'n-after');
    expect(after.t).toBe('ack');
    acked.push('room again');
    const inLog: string[] = [];
    for await (const stored of platform.platform.runtime.store.readSubject(platform.platform.runtime.subjects.conv(conv.conversationId), 0)) {
      if (stored.event.type === 'message.sent') inLog.push(stored.event.data.text);
    }
    expect(inLog).toEqual(acked);
    await waitUntil(async () => (await api(platform.http, 'GET', '/healthz')).status === 200, 20_000, '/healthz back to 200');
  }, 90_000);
});

/**
 * A real full disk under Postgres: the test database lives in a tablespace
 * on a small tmpfs. Sends never touch Postgres, so they keep being acked; the
 * projector stalls on SQLSTATE 53100 and /healthz must say so; a write over
 * HTTP answers `unavailable` with the reason; once the file is deleted the
 * projector catches up by itself and nothing acked is missing from history.
 */
describe.skipIf(!isRoot)('a full disk under Postgres', () => {
  let spaceDir = '';
  let namespace = '';
  let admin: pg.Client | undefined;
  let p: TestPlatform | undefined;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await admin.connect();
    // The server runs as its own user (postgres, when started by root): the tablespace must be its own.
    const owner = await fs.stat(String((await admin.query('SHOW data_directory')).rows[0].data_directory));
    spaceDir = path.join(dataDir, 'pgspace');
    await fs.mkdir(spaceDir);
    mountTmpfs(spaceDir, '24m');
    await fs.chown(spaceDir, owner.uid, owner.gid);
    await fs.chmod(spaceDir, 0o700);
    namespace = uniqueNamespace('df');
    await admin.query(`CREATE TABLESPACE ${namespace} LOCATION '${spaceDir}'`);
    await admin.query(`CREATE DATABASE ${namespace} TABLESPACE ${namespace}`);
    const url = new URL(inject('pgAdminUrl'));
    url.pathname = `/${namespace}`;
    p = await startTestPlatform({
      namespace,
      databaseUrl: url.toString(),
      env: {
        PARLEY_DATA_DIR: dataDir,
        HEALTH_MIN_FREE_DISK_MB: '1',
        PROJECTOR_RETRY_DELAY_MS: '100',
        RATE_SENDS_PER_SECOND: '1000',
        RATE_FRAMES_PER_SECOND: '1000',
        NOTIFY_ALLOW_HTTP: 'true',
        NOTIFY_ALLOW_PRIVATE_TARGETS: 'true',
      },
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await p?.stop();
    if (namespace) {
      await admin?.query(`DROP DATABASE IF EXISTS ${namespace} WITH (FORCE)`).catch(() => undefined);
      await admin?.query(`DROP TABLESPACE IF EXISTS ${namespace}`).catch(() => undefined);
    }
    await admin?.end();
    unmountTmpfs(spaceDir);
  }, 30_000);

  it('keeps acking sends, reports postgres degraded while the projector stalls, and catches up when space returns', async () => {
    const platform = p!;
    const { aliceToken, bobToken, alice, conv } = await directAliceBob(platform, clients);
    const history = async () =>
      (await api(platform.http, 'GET', `/v1/conversations/${conv.conversationId}/messages?limit=200`, bobToken)).body.messages as { text: string }[];
    const acked: string[] = [];
    for (let i = 0; i < 3; i++) {
      expect((await alice.send(conv.conversationId, `before ${i}`, `b${i}`)).t).toBe('ack');
      acked.push(`before ${i}`);
    }
    await waitUntil(async () => (await history()).length === 3, 20_000, 'the read model to have the first messages');
    await waitUntil(async () => (await api(platform.http, 'GET', '/healthz')).status === 200, 20_000, '/healthz 200 before the disk fills');

    await fillDisk(spaceDir);
    // The log has room: sends are acked while the read model cannot store them.
    for (let i = 0; i < 40; i++) {
      const text = `while postgres is full ${i} ${'z'.repeat(3000)}`;
      expect(await alice.send(conv.conversationId, text, `f${i}`)).toMatchObject({ t: 'ack' });
      acked.push(text);
    }
    await waitUntil(async () => (await api(platform.http, 'GET', '/healthz')).status === 503, 20_000, '/healthz to report the full disk');
    const health = await api(platform.http, 'GET', '/healthz');
    expect(health.body).toMatchObject({ status: 'degraded', down: ['postgres'] });
    expect(health.body.checks.postgres.detail).toBe('Postgres disk full (SQLSTATE 53100)');

    // A write that needs Postgres answers unavailable, with the reason.
    const register = await api(platform.http, 'POST', '/v1/notifications/channels', aliceToken, { kind: 'webhook', url: 'http://127.0.0.1:9/hook' });
    expect(register.status).toBe(503);
    expect(register.body).toEqual({ code: 'unavailable', message: 'Postgres disk full (SQLSTATE 53100); retry later', retryable: true });
    expect((await history()).length).toBeLessThan(acked.length);

    await freeDisk(spaceDir);
    await waitUntil(async () => (await history()).length === acked.length, 30_000, 'the projector to catch up');
    expect((await history()).map((m) => m.text)).toEqual([...acked].reverse());
    await waitUntil(async () => (await api(platform.http, 'GET', '/healthz')).status === 200, 20_000, '/healthz back to 200');
    expect((await api(platform.http, 'POST', '/v1/notifications/channels', aliceToken, { kind: 'webhook', url: 'http://127.0.0.1:9/hook' })).status).toBe(201);
  }, 90_000);
});
