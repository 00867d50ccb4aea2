import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { pickFreePort } from '../ops/embedded/free-port.js';
import { startPlatform } from '../ops/platform.js';
import { loadConfig } from '../services/runtime/config.js';
import { ExposureRefused } from '../services/runtime/exposure.js';
import { createLogger } from '../services/observability/logger.js';

/**
 * The real entry points refuse to listen beyond loopback with development
 * defaults, in one log line naming what to set, before starting anything.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'parley-exposure-'));
afterAll(() => fs.rm(dataDir, { recursive: true, force: true }));

function run(command: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; lines: string[]; ms: number }> {
  const t = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PARLEY_DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`still running after 20 s:\n${out}`));
    }, 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, lines: out.split('\n').filter((l) => l.startsWith('{')), ms: Date.now() - t });
    });
  });
}

describe('exposed with development defaults', () => {
  it.each([
    ['npm start with HOST=0.0.0.0', 'npm', ['start'], '0.0.0.0'],
    ['tsx ops/start.ts with HOST=::', path.join(root, 'node_modules/.bin/tsx'), ['ops/start.ts'], '::'],
  ])(
    '%s refuses in one line, before starting nats-server or Postgres',
    async (_name, command, args, host) => {
      const ports = { PORT: String(await pickFreePort()), NATS_PORT: String(await pickFreePort()), POSTGRES_PORT: String(await pickFreePort()) };
      const r = await run(command, args as string[], { HOST: host as string, ...ports });
      expect(r.code).toBe(1);
      // Every line it logged: exactly one, the refusal, naming what to set.
      expect(r.lines).toHaveLength(1);
      const line = JSON.parse(r.lines[0]!) as { level: string; msg: string };
      expect(line.level).toBe('error');
      expect(line.msg).toMatch(/^refusing to start: HOST=.* is not a loopback address/);
      for (const v of ['AUTH_JWT_SECRET', 'PARLEY_ALLOW_INSECURE_BIND=true', 'HOST=127.0.0.1']) expect(line.msg).toContain(v);
      // Nothing was started: no server directories under the data dir.
      expect(await fs.readdir(dataDir)).toEqual([]);
    },
    30_000,
  );

  it('startPlatform (every other way the gateway starts) refuses before connecting to anything', async () => {
    const config = loadConfig({ HOST: '0.0.0.0', PARLEY_DATA_DIR: dataDir });
    const log = createLogger({ level: 'silent' });
    // Unreachable servers: reaching them would fail differently (and slowly).
    await expect(startPlatform(config, log, { natsUrl: 'nats://127.0.0.1:1', databaseUrl: 'postgres://u:p@127.0.0.1:1/x' })).rejects.toThrow(ExposureRefused);
  });
});
