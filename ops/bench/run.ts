/**
 * `npm run bench`: runs the benchmark suite on this machine and writes
 * bench-results/<time>-<scale>.json and .md, and bench-results/latest.json
 * (the per-system, per-scenario summary of ops/bench/summary.ts). Not a test: nothing here
 * passes or fails on timing. Options:
 *
 *   --scale smoke|quick|full (default full; smoke is the CI-sized run; quick: 1:1 and groups of 10 only, a few minutes)
 *   --only fanout,idle,storm,external,scaleout (scaleout: Parley at R1/R3 with 1/2 gateways; only when named)
 *   --systems parley,peer
 *   --sustain 60            seconds of the brief's 5,000 sends/s phase
 *   --storm-clients 2000    storm size (skips the separate 20,000-client Parley storm)
 *   --topologies group      send scenarios to run: direct, group, channel (default all)
 *   --report <file.json>    print the markdown of an earlier run again
 *   --profile <dir>         CPU profiles of Parley's gateway and workers per send phase and storm
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { markdownReport } from './report.js';
import { fullScale, QUICK, SMOKE } from './scales.js';
import { writeRunFiles } from './results.js';
import { runSuite, type ScenarioName, type SuiteResult, type SystemName } from './suite.js';

const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: 'full' },
    only: { type: 'string' },
    systems: { type: 'string' },
    sustain: { type: 'string', default: '60' },
    /** Storm size instead of the brief's (and no separate 20,000-client Parley storm): to find where resume holds up. */
    'storm-clients': { type: 'string' },
    /** Only these send topologies (direct, group, channel): to look at one closely. */
    topologies: { type: 'string' },
    out: { type: 'string', default: path.join(projectDir, 'bench-results') },
    /** Re-render the markdown of an earlier run's JSON (after a report change) instead of running. */
    report: { type: 'string' },
    /** Folder for CPU profiles of Parley's gateway, one per send phase (profiling costs CPU: not for recorded figures). */
    profile: { type: 'string' },
  },
});
if (values.report) {
  process.stdout.write(markdownReport(JSON.parse(fs.readFileSync(values.report, 'utf8')) as SuiteResult) + '\n');
  process.exit(0);
}
if (!['smoke', 'quick', 'full'].includes(values.scale)) throw new Error(`--scale ${values.scale}: smoke, quick or full`);
const chosen = values.scale === 'smoke' ? SMOKE : values.scale === 'quick' ? QUICK : fullScale(Number(values.sustain));
const stormClients = values['storm-clients'] ? Number(values['storm-clients']) : null;
const sized = stormClients ? { ...chosen, storm: { ...chosen.storm, clients: stormClients }, stormTargetClients: null } : chosen;
const topologies = values.topologies?.split(',');
const scale = topologies ? { ...sized, fanout: sized.fanout.filter((f) => topologies.includes(f.spec.topology)) } : sized;
const result = await runSuite({
  scale,
  projectDir,
  ...(values.only ? { scenarios: values.only.split(',') as ScenarioName[] } : {}),
  ...(values.systems ? { systems: values.systems.split(',') as SystemName[] } : {}),
  ...(values.profile ? { profileDir: path.resolve(values.profile) } : {}),
});
const files = writeRunFiles(result, values.out);
process.stdout.write(`${files.markdown}\nwritten: ${[files.json, files.md, files.latest].filter(Boolean).join(', ')}\n`);
