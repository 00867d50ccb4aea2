import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { loadConfig, type Config } from '../../services/runtime/config.js';
import { createLogger, type Logger } from '../../services/observability/logger.js';
import { startPlatform, type Platform } from '../../ops/platform.js';

export const TEST_JWT_SECRET = 'parley-test-secret-0123456789abcdef0123456789';

/**
 * chDB binds one data directory per process, and vitest runs each test file
 * in its own process: one data dir per process, shared by every platform a
 * file starts.
 */
const processDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `parley-test-${process.pid}-`));
// Removed after the file's last hook (registered first, so it runs after the file's own afterAll that stops its
// platforms); vitest ends its workers without an 'exit' event. Left behind, every test file of every run added a
// few megabytes to the machine's temporary directory.
afterAll(() => fs.rmSync(processDataDir, { recursive: true, force: true }));

export interface TestPlatform {
  platform: Platform;
  config: Config;
  namespace: string;
  databaseUrl: string;
  natsUrl: string;
  http: string;
  ws: string;
  /** Error-level log lines seen so far: tests assert there were none they did not expect. */
  errorLogs: string[];
  /** Every log line, at debug level, when started with `captureLogs`. */
  logs: string[];
  token(userId: string): Promise<string>;
  stop(): Promise<void>;
}

export function uniqueNamespace(prefix = 't'): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

/** Creates a database of its own for a test file (the namespace doubles as its name). */
export async function createDatabase(name: string): Promise<string> {
  const admin = inject('pgAdminUrl');
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

export interface TestPlatformOptions {
  namespace?: string;
  databaseUrl?: string;
  natsUrl?: string;
  withWorkers?: boolean;
  nodeId?: number;
  env?: Record<string, string>;
  /** Keep every log line (debug level) in `logs`, for tests about logging. */
  captureLogs?: boolean;
}

export async function startTestPlatform(options: TestPlatformOptions = {}): Promise<TestPlatform> {
  const namespace = options.namespace ?? uniqueNamespace();
  const databaseUrl = options.databaseUrl ?? (await createDatabase(namespace));
  const natsUrl = options.natsUrl ?? inject('natsUrl');
  const config = loadConfig({
    PARLEY_NAMESPACE: namespace,
    PARLEY_DATA_DIR: processDataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    NODE_ID: String(options.nodeId ?? 1),
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    AUTH_DEV_TOKENS: 'true',
    LOG_LEVEL: 'warn',
    // Test files run in parallel: the analysts' ClickHouse-compatible endpoint only where a test asks for it (port 0).
    ANALYTICS_HTTP_PORT: 'off',
    ...options.env,
  });
  const errorLogs: string[] = [];
  const logs: string[] = [];
  const verbose = process.env.PARLEY_TEST_LOG === 'debug';
  const log: Logger = createLogger({
    level: verbose || options.captureLogs ? 'debug' : 'warn',
    base: { ns: namespace },
    write: (line) => {
      if (line.includes('"level":"error"')) errorLogs.push(line);
      if (options.captureLogs) logs.push(line);
      if (verbose || line.includes('"level":"error"')) process.stderr.write(line + '\n');
    },
  });
  const platform = await startPlatform(config, log, { natsUrl, databaseUrl, withWorkers: options.withWorkers ?? true });
  const http = `http://127.0.0.1:${platform.gateway.port}`;
  return {
    platform,
    config,
    namespace,
    databaseUrl,
    natsUrl,
    http,
    ws: `ws://127.0.0.1:${platform.gateway.port}/v1/ws`,
    errorLogs,
    logs,
    async token(userId) {
      const res = await fetch(`${http}/v1/dev/token`, { method: 'POST', body: JSON.stringify({ userId }) });
      if (res.status !== 200) throw new Error(`token for ${userId}: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { token: string }).token;
    },
    stop: () => platform.stop(),
  };
}
