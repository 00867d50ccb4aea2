import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { clickhouseMigrations } from '../migrations/clickhouse/index.js';
import { startPlatform, type Platform } from '../ops/platform.js';
import { startStack, type Stack } from '../ops/stack.js';
import { loadConfig } from '../services/runtime/config.js';
import { createLogger } from '../services/observability/logger.js';
import { TEST_JWT_SECRET } from './support/platform.js';
import { api, TestClient } from './support/ws-client.js';

/**
 * The `npm start` path, end to end: embedded nats-server, embedded Postgres
 * and chDB under one data dir, stopped completely and started again.
 */
const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-restart-'));
// Under root the embedded Postgres runs as `postgres`, which must traverse the data dir (mkdtemp makes it 0700).
await fs.chmod(dataDir, 0o711);
const config = loadConfig({
  PARLEY_DATA_DIR: dataDir,
  NATS_PORT: '0',
  POSTGRES_PORT: '0',
  PORT: '0',
  AUTH_JWT_SECRET: TEST_JWT_SECRET,
  AUTH_DEV_TOKENS: 'true',
  LOG_LEVEL: 'warn',
});
const log = createLogger({ level: 'warn', write: (l) => process.stderr.write(l + '\n') });

let stack: Stack | null = null;
let platform: Platform | null = null;

async function up(): Promise<string> {
  stack = await startStack(config, log, projectDir);
  platform = await startPlatform(config, log, { natsUrl: stack.natsUrl, databaseUrl: stack.databaseUrl });
  const http = `http://127.0.0.1:${platform.gateway.port}`;
  // Ready means every check is green (the projector has caught up with the log after the restart).
  for (let i = 0; i < 200 && (await api(http, 'GET', '/healthz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  return http;
}

async function down(): Promise<void> {
  await platform?.stop();
  await stack?.stop();
  platform = null;
  stack = null;
}

async function token(http: string, userId: string): Promise<string> {
  return (await api(http, 'POST', '/v1/dev/token', undefined, { userId })).body.token;
}

afterAll(async () => {
  await down();
  await fs.rm(dataDir, { recursive: true, force: true });
});

describe('a full stop and start of the stack', () => {
  it('keeps every message, conversation and position, and keeps working', async () => {
    let http = await up();
    const alice = await TestClient.connect(`${http.replace('http', 'ws')}/v1/ws`, await token(http, 'alice'));
    const conv = (await api(http, 'POST', '/v1/conversations', await token(http, 'alice'), { kind: 'direct', peer: 'bob' })).body;
    await alice.joined(conv.conversationId);
    const texts = ['吹牛就没输过', 'Frank, thank you very much! I appreciate it!', '👍'];
    let lastSeq = 0;
    for (const t of texts) lastSeq = (await alice.send(conv.conversationId, t, `k-${t.length}-${lastSeq}`)).result.seq;
    await api(http, 'GET', `/v1/conversations/${conv.conversationId}/messages?after=${lastSeq}`, await token(http, 'bob'));
    await alice.close();

    await down();
    http = await up();

    const bobToken = await token(http, 'bob');
    const history = await api(http, 'GET', `/v1/conversations/${conv.conversationId}/messages`, bobToken);
    expect(history.status).toBe(200);
    expect(history.body.messages.map((m: { text: string }) => m.text)).toEqual([...texts].reverse());

    // The same 1:1 is found again, not created twice, and new messages continue the log.
    const again = (await api(http, 'POST', '/v1/conversations', bobToken, { kind: 'direct', peer: 'alice' })).body;
    expect(again).toMatchObject({ conversationId: conv.conversationId, created: false });
    const bob = await TestClient.connect(`${http.replace('http', 'ws')}/v1/ws`, bobToken);
    const ack = await bob.send(conv.conversationId, 'back after restart');
    expect(ack.result.seq).toBeGreaterThan(lastSeq);
    await bob.message(conv.conversationId, 'back after restart');
    await bob.close();

    // Migrations were not re-applied: ClickHouse kept its schema table.
    const rows = await platform!.runtime.clickhouse.query({ query: 'SELECT count() AS n FROM parley.schema_migrations', format: 'JSONEachRow' });
    expect(Number((await rows.json<{ n: string }>())[0]!.n)).toBe(clickhouseMigrations.length);
  });

  it('answers /healthz with 503 naming each dependency that is down, while the gateway stays up', async () => {
    const http = `http://127.0.0.1:${platform!.gateway.port}`;
    expect((await api(http, 'GET', '/healthz')).status).toBe(200);
    await stack!.embedded.postgres!.stop();
    const pgDown = await api(http, 'GET', '/healthz');
    expect(pgDown.status).toBe(503);
    expect(pgDown.body.down).toEqual(expect.arrayContaining(['postgres']));
    expect(pgDown.body.down).not.toContain('nats');
    await stack!.embedded.nats!.stop();
    const bothDown = await api(http, 'GET', '/healthz');
    expect(bothDown.status).toBe(503);
    expect(bothDown.body.down).toEqual(expect.arrayContaining(['nats', 'postgres']));
    expect(bothDown.body.checks.clickhouse.ok).toBe(true);
  });
});
