import fs from 'node:fs';
import path from 'node:path';
import { markdownReport } from './report.js';
import { summarize } from './summary.js';
import type { SuiteResult } from './suite.js';

/**
 * Writes a run's files into `outDir`: <time>-<scale>.json (everything),
 * .md (the report) and latest.json (the summary). A run without send
 * scenarios (e.g. `--only scaleout`) leaves latest.json as it was.
 */
export function writeRunFiles(result: SuiteResult, outDir: string): { json: string; md: string; latest: string | null; markdown: string } {
  fs.mkdirSync(outDir, { recursive: true });
  const base = path.join(outDir, `${result.startedAt.replace(/[:.]/g, '-')}-${result.scale}`);
  fs.writeFileSync(`${base}.json`, JSON.stringify(result, null, 2));
  const markdown = markdownReport(result);
  fs.writeFileSync(`${base}.md`, markdown);
  const rows = summarize(result);
  let latest: string | null = null;
  if (rows.length) {
    latest = path.join(outDir, 'latest.json');
    fs.writeFileSync(latest, `${JSON.stringify(rows, null, 2)}\n`);
  }
  return { json: `${base}.json`, md: `${base}.md`, latest, markdown };
}
