import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../ops/cli/command.js';
import { main } from '../ops/cli/main.js';
import { parked } from '../ops/cli/parked.js';
import { streams } from '../ops/cli/streams.js';
import { appendAll, created, sent } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let p: TestPlatform;
let seqs: number[] = [];

function env(): Record<string, string> {
  return { NATS_URL: p.natsUrl, DATABASE_URL: p.databaseUrl, PARLEY_NAMESPACE: p.namespace, LOG_LEVEL: 'warn' };
}

function io(out: string[], err: string[] = []): CliIO {
  return { out: (l) => out.push(l), err: (l) => err.push(l), env: env(), signal: new AbortController().signal };
}

async function run(
  group: { commands: Record<string, { run(args: string[], io: CliIO): Promise<void> }> },
  command: string,
  args: string[] = [],
): Promise<string[]> {
  const out: string[] = [];
  await group.commands[command]!.run(args, io(out));
  return out;
}

/** The real entry point, as `npm run parley -- ...` runs it. */
async function parley(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(path.join(root, 'node_modules/.bin/tsx'), ['ops/cli/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, ...env() },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  p = await startTestPlatform({ withWorkers: false });
  seqs = await appendAll(p.platform.runtime, [
    created('g_cli', ['ops', 'dev']),
    sent('g_cli', 'ops', 'hello 运维'),
    sent('g_other', 'dev', 'not this one'),
    sent('g_cli', 'dev', 'bye 👋'),
  ]);
});

afterAll(async () => {
  await p?.stop();
});

describe('the operator CLI', () => {
  it("exports one conversation's log as NDJSON, exactly as stored (through the real entry point)", async () => {
    const { code, stdout, stderr } = await parley('streams', 'export', 'g_cli');
    expect(code).toBe(0);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.seq)).toEqual([seqs[0], seqs[1], seqs[3]]);
    expect(lines.map((l) => l.event.type)).toEqual(['conversation.created', 'message.sent', 'message.sent']);
    expect(lines[1]).toMatchObject({ subject: `${p.namespace}.ev.conv.g_cli`, event: { actor: 'ops', data: { text: 'hello 运维' } } });
    expect(new Date(lines[0].time).getTime()).toBeGreaterThan(0);
    expect(stderr).toContain('exported 3 events of g_cli');
  });

  it("answers usage mistakes with status 2 and the command's usage", async () => {
    const usage: string[] = [];
    expect(await main(['projectors', 'reset', 'read-model'], io([], usage))).toBe(2);
    expect(usage.join('\n')).toContain('--to-seq is required');
    expect(await main(['nonsense'], io([]))).toBe(2);
    expect(await main(['streams', 'tail'], io([]))).toBe(2);
    const help: string[] = [];
    expect(await main(['help'], io([], help))).toBe(0);
    for (const cmd of ['streams info', 'streams tail', 'streams export', 'projectors rebuild', 'projectors reset', 'parked redrive'])
      expect(help.join('\n')).toContain(`parley ${cmd}`);
    const failing: string[] = [];
    expect(await main(['projectors', 'rebuild', 'no-such-projector'], io([], failing))).toBe(1);
    expect(failing.join('\n')).toContain('[not_found] no projector named no-such-projector');
  });

  it('shows the stream and its consumers', async () => {
    const info = JSON.parse((await run(streams, 'info')).join('\n'));
    expect(info).toMatchObject({ stream: `${p.namespace}_events_0`, retention: { maxAgeDays: 365 }, duplicateWindowSeconds: 120, state: { lastSeq: seqs[3] } });
    expect(info.epoch).toBe(p.platform.runtime.shards[0]!.epoch);
    const consumers = JSON.parse((await run(streams, 'consumers')).join('\n'));
    expect(Array.isArray(consumers)).toBe(true);
  });

  it('tails a subject filter from a position', async () => {
    const all = (await run(streams, 'tail', ['conv.*', '--all'])).map((l) => JSON.parse(l).seq);
    expect(all).toEqual(seqs);
    const some = (await run(streams, 'tail', ['conv.g_cli', '--from-seq', String(seqs[1]), '--limit', '1'])).map((l) => JSON.parse(l).event.data.text);
    expect(some).toEqual(['hello 运维']);
  });

  it('lists parked events (none here)', async () => {
    expect(await run(parked, 'list', ['--status', 'all'])).toEqual([]);
  });
});
