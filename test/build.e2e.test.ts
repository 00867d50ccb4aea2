import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createDatabase, uniqueNamespace } from './support/platform.js';

/**
 * `npm run build` output runs with plain node: the operator CLI and the
 * whole platform, with no tsx anywhere in what was built. The build goes to
 * a directory of its own (inside the project, so node_modules resolve), not
 * to the dist/ an operator may be running.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, '.parley', `build-test-${process.pid}`);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-build-test-'));

function jsFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js'))
    .map((f) => path.join(dir, f));
}

beforeAll(() => {
  const build = spawnSync(process.execPath, [path.join(root, 'ops', 'build', 'build.mjs'), '--out-dir', out], { cwd: root, encoding: 'utf8', timeout: 90_000 });
  if (build.status !== 0) throw new Error(`build failed (${build.status ?? build.signal}):\n${build.stdout}\n${build.stderr}`);
}, 120_000);

afterAll(() => {
  fs.rmSync(out, { recursive: true, force: true });
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('production build', () => {
  it('compiles every part of the program, and nothing it emits loads tsx', () => {
    for (const entry of [
      'ops/start.js',
      'ops/cli/main.js',
      'services/gateway/service.js',
      'migrations/postgres/index.js',
      'contracts/index.js',
      'clients/terminal/main.js',
      'clients/sdk/index.js',
    ]) {
      expect(fs.existsSync(path.join(out, entry)), entry).toBe(true);
    }
    const files = jsFiles(out);
    expect(files.length).toBeGreaterThan(100);
    expect(files.filter((f) => f.endsWith('.test.js'))).toEqual([]);
    const importsTsx = /(?:from\s*|import\s*\(\s*|require\s*\(\s*|import\s+)['"]tsx(?:\/[^'"]*)?['"]|--import[= ]tsx/;
    expect(files.filter((f) => importsTsx.test(fs.readFileSync(f, 'utf8'))).map((f) => path.relative(out, f))).toEqual([]);
  });

  it('runs the operator CLI with plain node', () => {
    const help = spawnSync(process.execPath, [path.join(out, 'ops', 'cli', 'main.js'), '--help'], { cwd: os.tmpdir(), encoding: 'utf8', timeout: 20_000 });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout + help.stderr).toMatch(/usage: parley <group> <command>/);
    // An unknown group is a usage error (2), not a crash: the bundle's dispatch works, not only its help text.
    const bad = spawnSync(process.execPath, [path.join(out, 'ops', 'cli', 'main.js'), 'nonsense'], { cwd: os.tmpdir(), encoding: 'utf8', timeout: 20_000 });
    expect(bad.status).toBe(2);
  });

  it('starts the platform with plain node and reports healthy', async () => {
    const namespace = uniqueNamespace('b');
    const env = {
      PATH: process.env.PATH ?? '',
      NATS_URL: inject('natsUrl'),
      DATABASE_URL: await createDatabase(namespace),
      PARLEY_NAMESPACE: namespace,
      PARLEY_DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
    };
    const child = spawn(process.execPath, [path.join(out, 'ops', 'start.js')], { cwd: os.tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 40_000;
      let http: string | undefined;
      while (!http && Date.now() < deadline) {
        http = /"msg":"parley is up".*?"http":"(http:\/\/[^"]+)"/.exec(output)?.[1];
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(http, output).toBeDefined();
      const health = (await (await fetch(`${http}/healthz`)).json()) as { status: string };
      expect(health.status).toBe('ok');
    } finally {
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 12_000))]);
      if (code === 'timeout') child.kill('SIGKILL');
      expect(code, output).toBe(0);
    }
  }, 60_000);
});
