import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * Benchmarks that are scripts of their own (written alongside this suite):
 * the runner starts each as a child, passes scale arguments, and reads the
 * figures from its output. A script may print `BENCH_RESULT {json}` lines
 * to hand over figures exactly; otherwise every `...: ... N events/s` line
 * is taken, and `µs` figures are kept with their line.
 */
export interface ExternalBench {
  key: string;
  file: string;
  smokeArgs: string[];
  fullArgs: string[];
  /** The output line that holds the figure compared with the brief's target. */
  headline: RegExp;
}

export const EXTERNAL_BENCHES: ExternalBench[] = [
  { key: 'append', file: 'append.ts', smokeArgs: ['--seconds', '1', '--modes', '1s', '--concurrency', '16'], fullArgs: [], headline: /events\/s|appends\/s/ },
  // 100,000 events: enough for a steady rate, and minutes less than the script's default on a busy machine.
  {
    key: 'projectorRebuild',
    file: 'projector-rebuild.ts',
    smokeArgs: ['--events', '2000', '--conversations', '50', '--batch', '500'],
    fullArgs: ['--events', '100000', '--conversations', '1000'],
    headline: /^rebuild replay/,
  },
  { key: 'analyticsIngest', file: 'analytics-ingest.ts', smokeArgs: ['--events', '5000', '--batch', '1000'], fullArgs: [], headline: /^ingested/ },
];

export interface Figure {
  label: string;
  perSecond: number;
  unit: string;
}

export interface ExternalResult {
  key: string;
  file: string;
  present: boolean;
  args: string[];
  exitCode: number | null;
  seconds: number;
  figures: Figure[];
  /** The figure compared with the target (per second), when found. */
  headline: Figure | null;
  json: unknown[];
  output: string[];
}

export function parseFigures(lines: string[]): Figure[] {
  const figures: Figure[] = [];
  for (const line of lines) {
    const m = /([\d][\d,]*(?:\.\d+)?)\s+([A-Za-z]+)\/s\b/.exec(line);
    if (!m) continue;
    const colon = line.indexOf(':');
    figures.push({ label: (colon > 0 ? line.slice(0, colon) : line).trim(), perSecond: Number(m[1]!.replace(/,/g, '')), unit: m[2]! });
  }
  return figures;
}

export async function runExternal(
  bench: ExternalBench,
  smoke: boolean,
  env: Record<string, string>,
  log: (s: string) => void,
  timeoutMs = smoke ? 120_000 : 1_200_000,
): Promise<ExternalResult> {
  const file = path.join(HERE, '..', bench.file);
  const args = smoke ? bench.smokeArgs : bench.fullArgs;
  const base: ExternalResult = {
    key: bench.key,
    file: `ops/bench/${bench.file}`,
    present: false,
    args,
    exitCode: null,
    seconds: 0,
    figures: [],
    headline: null,
    json: [],
    output: [],
  };
  if (!fs.existsSync(file)) {
    log(`  ${bench.key}: ops/bench/${bench.file} is not there yet: skipped`);
    return base;
  }
  const t0 = performance.now();
  const output: string[] = [];
  const exitCode = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        output.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(`[${bench.key}] ${d}`));
    // A script that hangs must not hold the whole run hostage: SIGINT lets it stop its own servers.
    const limit = setTimeout(() => {
      output.push(`(stopped after ${timeoutMs / 1000} s)`);
      child.kill('SIGINT');
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(limit);
      if (buf) output.push(buf);
      resolve(code);
    });
  });
  const json = output.filter((l) => l.startsWith('BENCH_RESULT ')).map((l) => JSON.parse(l.slice('BENCH_RESULT '.length)) as unknown);
  const figures = parseFigures(output.filter((l) => !l.startsWith('BENCH_RESULT ')));
  const headlineLine = output.find((l) => bench.headline.test(l));
  const headline = headlineLine ? (parseFigures([headlineLine])[0] ?? null) : null;
  for (const line of output) log(`  ${bench.key}: ${line}`);
  if (exitCode !== 0) log(`  ${bench.key}: exited with ${exitCode}`);
  return { ...base, present: true, exitCode, seconds: (performance.now() - t0) / 1000, figures, headline, json, output };
}
