import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseClientFrame } from './ws/parse-frame.js';

const enc = (s: string) => new TextEncoder().encode(s).buffer as ArrayBuffer;

describe('client frame parsing', () => {
  it('accepts a valid send frame', () => {
    const r = parseClientFrame(enc(JSON.stringify({ t: 'send', id: 'r1', conversationId: 'g_1', clientMsgId: 'c1', text: 'hi' })), false, 1024);
    expect(r.error).toBeNull();
    expect(r.frame).toMatchObject({ t: 'send', text: 'hi' });
  });

  it.each([
    ['{', 'invalid_json'],
    ['null', 'invalid_frame'],
    ['"send"', 'invalid_frame'],
    ['{"t":5}', 'invalid_frame'],
    ['{"t":"eat"}', 'unknown_frame_type'],
    ['{"t":"send","id":"r"}', 'invalid_frame'],
  ])('%s -> %s', (raw, code) => {
    expect(parseClientFrame(enc(raw), false, 1024).error?.code).toBe(code);
  });

  it('checks size before parsing and keeps the request id when it can', () => {
    expect(parseClientFrame(enc('x'.repeat(2000)), false, 1024).error?.code).toBe('frame_too_large');
    expect(parseClientFrame(enc('{"t":"send","id":"keep-me"}'), false, 1024).requestId).toBe('keep-me');
    expect(parseClientFrame(enc('{}'), true, 1024).error?.code).toBe('binary_not_supported');
  });
});

describe('uWebSockets.js native binary', () => {
  it('the gateway refuses to start on the JavaScript fallback', () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
    const script =
      "import('./services/gateway/uws.ts').then((m) => { m.loadNativeUws(); console.log('loaded'); }).catch((e) => { console.log('refused: ' + e.message); })";
    const run = (env: Record<string, string>) =>
      execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
    expect(run({ UWS_USE_FALLBACK: '1' })).toMatch(/refused: uWebSockets.js loaded its JavaScript fallback/);
    expect(run({})).toMatch(/loaded/);
  });
});
