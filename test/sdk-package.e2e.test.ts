import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import { build } from 'esbuild';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

/**
 * The SDK as a package (clients/sdk/package.json): `npm run build:sdk` builds
 * ESM and declarations; the built module runs in Node against a real gateway,
 * and bundled for a browser it stays under its size budget.
 */

/** The budget of issue 17: a browser app pays at most this for the SDK (minified, gzipped). */
const BROWSER_BUDGET_BYTES = 25 * 1024;

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-sdk-'));
let p: TestPlatform;

beforeAll(async () => {
  const built = spawnSync(process.execPath, ['clients/sdk/build.mjs', '--out-dir', out], { encoding: 'utf8', timeout: 60_000 });
  if (built.status !== 0) throw new Error(`build:sdk failed: ${built.stderr}${built.stdout}`);
  p = await startTestPlatform();
});
afterAll(async () => {
  await p?.stop();
  fs.rmSync(out, { recursive: true, force: true });
});

describe('the SDK package', () => {
  it('has the files its package.json exports', () => {
    const pkg = JSON.parse(fs.readFileSync('clients/sdk/package.json', 'utf8')) as { name: string; exports: Record<string, Record<string, string>> };
    expect(pkg.name).toBe('@parley/sdk');
    for (const entry of Object.values(pkg.exports)) {
      for (const file of Object.values(entry)) expect(fs.existsSync(path.join(out, file.replace(/^\.\/dist\//, ''))), file).toBe(true);
    }
    const types = fs.readFileSync(path.join(out, 'types/clients/sdk/index.d.ts'), 'utf8');
    expect(types).toContain('ParleyClient');
  });

  it('stays under 25 KB gzipped in a browser bundle, with no schema library in it', async () => {
    const bundle = await build({
      stdin: { contents: `export * from ${JSON.stringify(pathToFileURL(path.join(out, 'index.js')).pathname)};`, resolveDir: process.cwd(), loader: 'js' },
      bundle: true,
      write: false,
      minify: true,
      format: 'esm',
      platform: 'browser',
      metafile: true,
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0]!.contents;
    const gzipped = zlib.gzipSync(js, { level: 9 }).byteLength;
    expect(gzipped).toBeLessThanOrEqual(BROWSER_BUDGET_BYTES);
    expect(Object.keys(bundle.metafile.inputs).filter((f) => f.includes('node_modules'))).toEqual([]);
    expect(new TextDecoder().decode(js)).not.toMatch(/require\(|process\.|Buffer\.from/);
  });

  it('runs in Node: connects, sends, receives its own event, folds the position', async () => {
    const sdk = (await import(pathToFileURL(path.join(out, 'index.js')).href)) as typeof import('../clients/sdk/index.js');
    const storage = new sdk.MemoryStorage();
    const client = new sdk.ParleyClient({
      url: p.ws,
      token: () => p.token('pkg-alice'),
      storage,
      WebSocket: WebSocket as unknown as import('../clients/sdk/index.js').WebSocketFactory,
    });
    const texts: string[] = [];
    client.on('event', (f) => {
      if (f.event.type === 'message.sent') texts.push(f.event.data.text);
    });
    try {
      await client.connect();
      const created = (await client.command({ t: 'create', kind: 'group', title: 'pkg', members: [] })) as { conversationId: string };
      const sent = await client.send(created.conversationId, 'from the built package');
      expect(sent.duplicate).toBe(false);
      await expect.poll(() => texts).toEqual(['from the built package']);
      expect(storage.load()).toBe(client.position);
    } finally {
      client.close();
    }
  });
});
