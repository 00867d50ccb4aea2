/**
 * `npm run bench`: runs the benchmark suite on this machine and writes
 * bench-results/<time>-<scale>.json and .md. Not a test: nothing here
 * passes or fails on timing. Options:
 *
 *   --scale smoke|full      (default full; smoke is the CI-sized run)
 *   --only fanout,idle,storm,external
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
import { fullScale, SMOKE } from './scales.js';
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
const chosen = values.scale === 'smoke' ? SMOKE : fullScale(Number(values.sustain));
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
fs.mkdirSync(values.out, { recursive: true });
const base = path.join(values.out, `${result.startedAt.replace(/[:.]/g, '-')}-${scale.name}`);
fs.writeFileSync(`${base}.json`, JSON.stringify(result, null, 2));
const md = markdownReport(result);
fs.writeFileSync(`${base}.md`, md);
process.stdout.write(`${md}\nwritten: ${base}.json and ${base}.md\n`);
