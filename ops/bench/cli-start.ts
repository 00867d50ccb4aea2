/**
 * `node --import tsx ops/bench/cli-start.ts [--build] [--platform] [--runs N]`:
 * how long `parley` commands take from the built JavaScript, wall clock per
 * spawn (node's own start included), median of N runs after one warm-up.
 * No test: the figures go to docs/operations.md ("Operator CLI").
 *
 * - Uses dist/ops/cli/main.js (or its own earlier build) when it is newer
 *   than every CLI and service source; otherwise (or with --build) builds
 *   into .bench-tmp/cli-start/, leaving dist/ alone.
 * - Commands that need no platform always run. With --platform it also
 *   starts the built platform (embedded NATS and Postgres, its own data dir
 *   and ports 14222/15432/18080 under .bench-tmp/) and times the commands
 *   that read the log, the read model and (through the gateway) analytics,
 *   then stops it and times the analytics commands opening chDB themselves.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 10;
const benchDir = path.join(root, '.bench-tmp', 'cli-start');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

function cliEntry(): string {
  const sources = Math.max(...['ops/cli', 'services', 'contracts'].map((d) => newestSource(path.join(root, d))));
  for (const built of [path.join(root, 'dist', 'ops', 'cli', 'main.js'), path.join(benchDir, 'dist', 'ops', 'cli', 'main.js')]) {
    if (!args.includes('--build') && fs.existsSync(built) && fs.statSync(built).mtimeMs > sources) return built;
  }
  process.stderr.write('building into .bench-tmp/cli-start/dist (dist/ is missing or older than the sources)\n');
  const out = path.relative(root, path.join(benchDir, 'dist'));
  const r = spawnSync(process.execPath, [path.join(root, 'ops', 'build', 'build.mjs'), '--out-dir', out], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('build failed');
  return path.join(benchDir, 'dist', 'ops', 'cli', 'main.js');
}

function time(argv: string[], env: NodeJS.ProcessEnv): { ms: number; status: number | null } {
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, argv, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { ms, status: r.status };
}

function measure(label: string, argv: string[], env: NodeJS.ProcessEnv): void {
  time(argv, env);
  const samples: number[] = [];
  let status: number | null = 0;
  for (let i = 0; i < runs; i++) {
    const r = time(argv, env);
    samples.push(r.ms);
    status = r.status;
  }
  samples.sort((a, b) => a - b);
  const median = samples.length % 2 ? samples[(samples.length - 1) / 2]! : (samples[samples.length / 2 - 1]! + samples[samples.length / 2]!) / 2;
  const f = (n: number) => `${Math.round(n)} ms`;
  process.stdout.write(`| \`${label}\` | ${f(median)} | ${f(samples[0]!)} | ${f(samples.at(-1)!)} | ${status} |\n`);
}

async function startPlatform(entry: string, env: NodeJS.ProcessEnv): Promise<() => Promise<void>> {
  const start = path.join(path.dirname(entry), '..', 'start.js');
  const child = spawn(process.execPath, [start], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the platform exited (${child.exitCode})`);
    const ok = await fetch(`http://127.0.0.1:${env.PORT}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error('the platform did not become healthy within 3 minutes');
    await new Promise((r) => setTimeout(r, 500));
  }
  return () =>
    new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
}

const entry = cliEntry();
const cli = path.relative(root, entry);
const env = { ...process.env, LOG_LEVEL: 'warn' };
process.stdout.write(
  `node ${process.version}, ${runs} runs each after one warm-up; wall clock per spawn\n\n| command | median | min | max | exit |\n|---|---|---|---|---|\n`,
);
measure('node -e 0', ['-e', '0'], env);
measure(`node ${cli} --help`, [entry, '--help'], env);
measure(`node ${cli} completion bash`, [entry, 'completion', 'bash'], env);
measure(`node ${cli} projectors reset (usage error)`, [entry, 'projectors', 'reset'], env);
if (args.includes('--platform')) {
  const platformEnv = {
    ...env,
    PARLEY_DATA_DIR: path.join(benchDir, 'data'),
    NATS_PORT: '14222',
    POSTGRES_PORT: '15432',
    PORT: '18080',
    ANALYTICS_HTTP_PORT: 'off',
    PARLEY_NAMESPACE: 'clibench',
  };
  const stop = await startPlatform(entry, platformEnv);
  try {
    for (const command of [
      ['streams', 'info'],
      ['streams', 'consumers'],
      ['projectors', 'list'],
      ['parked', 'list'],
      ['log', 'tombstones'],
      ['projectors', 'cleanup'],
      ['streams', 'tail', '>', '--all', '--limit', '10'],
      ['streams', 'export', 'g_bench'],
      // Through the running gateway (chDB belongs to the platform), as an operator runs them.
      ['analytics', 'sql', 'SELECT count() FROM events'],
      ['analytics', 'report', 'busiest-hours'],
    ])
      measure(`node ${cli} ${command.join(' ')}`, [entry, ...command], platformEnv);
    // The gateway's own share of the report: node plus one request, no CLI.
    const report = `http://127.0.0.1:${platformEnv.PORT}/v1/analytics/reports/busiest-hours`;
    measure(`node -e 'await fetch(<report URL>)'`, ['--input-type=module', '-e', `await (await fetch(${JSON.stringify(report)})).json()`], platformEnv);
  } finally {
    await stop();
  }
  // With the platform stopped nothing answers on PORT: the CLI opens the embedded chDB directory itself.
  for (const command of [
    ['analytics', 'sql', 'SELECT count() FROM events'],
    ['analytics', 'report', 'busiest-hours'],
  ])
    measure(`node ${cli} ${command.join(' ')} (platform stopped: opens chDB)`, [entry, ...command], platformEnv);
}
