import type { PhaseResult } from './scenarios/fanout.js';
import type { StormResult } from './scenarios/storm.js';
import type { SuiteResult } from './suite.js';
import { summarize } from './summary.js';

const int = (n: number | undefined) => (n === undefined ? '–' : Math.round(n).toLocaleString('en'));
// Runs recorded before a figure existed (`--report old.json`) show a dash for it.
const f1 = (n: number | undefined) => (n === undefined ? '–' : n.toFixed(1));
const f2 = (n: number | undefined) => (n === undefined ? '–' : n.toFixed(2));
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? `${(a / b).toFixed(2)}×` : '–');
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

function phase(r: SuiteResult, system: 'parley' | 'peer', topology: string, name: string): PhaseResult | undefined {
  return r[system].fanout.find((f) => f.topology === topology)?.phases.find((p) => p.name === name);
}

/** Where each of the brief's performance targets stands, from Parley's figures. */
function targets(r: SuiteResult): string[] {
  const rows: [string, string, string][] = [];
  const verdict = (ok: boolean | null) => (ok === null ? 'not measured' : ok ? 'met' : 'not met');
  const sustained = r.parley.fanout.find((f) => f.topology === 'group')?.phases.find((p) => p.name.startsWith('brief load'));
  if (sustained) {
    const ok = sustained.sendsPerSecond >= 4950 && sustained.lost === 0 && sustained.duplicates === 0;
    rows.push([
      '≥ 5,000 sends/s to groups of 10 (50,000 deliveries/s), nothing lost or duplicated',
      `${int(sustained.sendsPerSecond)} sends/s, ${int(sustained.deliveriesPerSecond)} deliveries/s for ${int(sustained.seconds)} s; lost ${sustained.lost}, duplicated ${sustained.duplicates}, p99 ${sustained.latencyMs.p99} ms`,
      verdict(ok),
    ]);
  }
  const half = phase(r, 'parley', 'group', 'brief half load 2,500/s');
  if (half)
    rows.push([
      'p50 ≤ 3 ms, p99 ≤ 25 ms at 2,500 sends/s (groups of 10)',
      `p50 ${half.latencyMs.p50} ms, p99 ${half.latencyMs.p99} ms at ${int(half.sendsPerSecond)} sends/s`,
      verdict(half.latencyMs.p50 <= 3 && half.latencyMs.p99 <= 25 && half.lost === 0),
    ]);
  const channel = phase(r, 'parley', 'channel', 'max');
  const direct = phase(r, 'parley', 'direct', 'max');
  if (channel)
    rows.push([
      'gateway CPU ≤ 10 µs per delivered message',
      `${f2(channel.cpuPerDeliveredUs)} µs (channel of ${int(channel.deliveries / Math.max(1, channel.acked))}, all gateway CPU / deliveries)`,
      verdict(channel.cpuPerDeliveredUs <= 10),
    ]);
  if (direct)
    rows.push([
      'gateway CPU ≤ 50 µs per incoming message',
      `${f1(direct.cpuPerIncomingUs)} µs (1:1, all gateway CPU / sends, its 2 deliveries included)`,
      verdict(direct.cpuPerIncomingUs <= 50),
    ]);
  const group = summarize(r).find((x) => x.system === 'parley' && x.scenario === 'group10');
  const peerGroup = summarize(r).find((x) => x.system === 'peer' && x.scenario === 'group10');
  if (group?.serverCpuUsPerSend) {
    rows.push([
      "whole-server CPU ≤ 150 µs per send (groups of 10, every server process) and ≥ 3× the peer's sends per CPU-second",
      `${f1(group.serverCpuUsPerSend)} µs per send at ${group.cpuPhase}; ${int(group.sendsPerCpuSecond ?? 0)} sends per CPU-second, ${ratio(group.sendsPerCpuSecond, peerGroup?.sendsPerCpuSecond)} the peer's`,
      verdict(group.serverCpuUsPerSend <= 150 && !!peerGroup?.sendsPerCpuSecond && (group.sendsPerCpuSecond ?? 0) >= 3 * peerGroup.sendsPerCpuSecond),
    ]);
  }
  for (const scenario of ['group10', 'direct']) {
    const at = summarize(r).find((x) => x.system === 'parley' && x.scenario === scenario)?.at1000;
    if (at)
      rows.push([
        `p50 ≤ 2 ms, p99 ≤ 15 ms at 1,000 sends/s (${scenario === 'direct' ? '1:1' : 'groups of 10'})`,
        `p50 ${at.p50Ms} ms, p99 ${at.p99Ms} ms at ${int(at.sendsPerSec)} sends/s`,
        verdict(at.p50Ms <= 2 && at.p99Ms <= 15),
      ]);
  }
  if (r.parley.idle)
    rows.push([
      '≥ 100,000 idle connections per GB of gateway memory',
      `${int(r.parley.idle.connectionsPerGiB)} per GiB (${f2(r.parley.idle.bytesPerConnection / 1024)} KiB each, ${int(r.parley.idle.connections)} held)`,
      verdict(r.parley.idle.connectionsPerGiB >= 100_000),
    ]);
  const storm = r.parleyStormAtTarget ?? r.parley.storm;
  if (storm) {
    const within = storm.allResumedSeconds !== null && storm.failed === 0 && storm.allResumedSeconds <= 15 && storm.wrongCount === 0 && storm.duplicates === 0;
    rows.push([
      '20,000 clients reconnect and resume (≤ 50 missed each) within 15 s, no gaps',
      `${int(storm.resumed)}/${int(storm.clients)} resumed ${resumedIn(storm)} over ${storm.gateways} gateway(s); wrong ${storm.wrongCount}, duplicated ${storm.duplicates}`,
      storm.clients < 20_000 ? `${verdict(within)} (at ${int(storm.clients)})` : verdict(within),
    ]);
  }
  for (const [key, label, min] of [
    ['projectorRebuild', 'projector rebuild ≥ 25,000 events/s into Postgres', 25_000],
    ['analyticsIngest', 'analytics ingest ≥ 100,000 events/s into ClickHouse', 100_000],
  ] as const) {
    const ext = r.external.find((e) => e.key === key);
    if (!ext) continue;
    rows.push([
      label,
      ext.headline
        ? `${int(ext.headline.perSecond)} ${ext.headline.unit}/s (${ext.headline.label})`
        : ext.present
          ? 'no figure found in its output'
          : `${ext.file} missing`,
      ext.headline ? verdict(ext.headline.perSecond >= min) : 'not measured',
    ]);
  }
  return ['| brief target | Parley measured | status |', '|---|---|---|', ...rows.map((row) => `| ${row.join(' | ')} |`)];
}

function comparison(r: SuiteResult): string[] {
  const rows: string[] = ['| scenario | figure | Parley | peer (Socket.IO + Postgres) | Parley / peer |', '|---|---|---|---|---|'];
  for (const topology of ['direct', 'group', 'channel']) {
    const a = r.parley.fanout.find((f) => f.topology === topology);
    const b = r.peer.fanout.find((f) => f.topology === topology);
    for (const p of a?.phases ?? b?.phases ?? []) {
      const pa = phase(r, 'parley', topology, p.name);
      const pb = phase(r, 'peer', topology, p.name);
      const label = `${topology === 'direct' ? '1:1' : topology === 'group' ? 'group of 10' : `channel of ${a?.membersPerConversation ?? b?.membersPerConversation}`}, ${p.name}`;
      rows.push(
        `| ${label} | sends/s (acked) | ${pa ? int(pa.sendsPerSecond) : '–'} | ${pb ? int(pb.sendsPerSecond) : '–'} | ${ratio(pa?.sendsPerSecond, pb?.sendsPerSecond)} |`,
      );
      rows.push(
        `| ${label} | deliveries/s | ${pa ? int(pa.deliveriesPerSecond) : '–'} | ${pb ? int(pb.deliveriesPerSecond) : '–'} | ${ratio(pa?.deliveriesPerSecond, pb?.deliveriesPerSecond)} |`,
      );
      rows.push(
        `| ${label} | latency p50 / p99 ms | ${pa ? `${pa.latencyMs.p50} / ${pa.latencyMs.p99}` : '–'} | ${pb ? `${pb.latencyMs.p50} / ${pb.latencyMs.p99}` : '–'} | ${ratio(pa?.latencyMs.p99, pb?.latencyMs.p99)} (p99) |`,
      );
      rows.push(
        `| ${label} | server CPU per send (all processes), µs / per delivery | ${pa ? `${f1(pa.allCpuPerSendUs)} / ${f2(pa.allCpuPerDeliveryUs)}` : '–'} | ${pb ? `${f1(pb.allCpuPerSendUs)} / ${f2(pb.allCpuPerDeliveryUs)}` : '–'} | ${ratio(pa?.allCpuPerSendUs, pb?.allCpuPerSendUs)} |`,
      );
      rows.push(
        `| ${label} | sends per server CPU-second (all processes) | ${pa ? int(pa.sendsPerServerCpuSecond) : '–'} | ${pb ? int(pb.sendsPerServerCpuSecond) : '–'} | ${ratio(pa?.sendsPerServerCpuSecond, pb?.sendsPerServerCpuSecond)} |`,
      );
      rows.push(
        `| ${label} | gateway-only CPU µs per send / per delivery | ${pa ? `${f1(pa.cpuPerIncomingUs)} / ${f2(pa.cpuPerDeliveredUs)}` : '–'} | ${pb ? `${f1(pb.cpuPerIncomingUs)} / ${f2(pb.cpuPerDeliveredUs)}` : '–'} | ${ratio(pa?.cpuPerDeliveredUs, pb?.cpuPerDeliveredUs)} (per delivery) |`,
      );
      rows.push(`| ${label} | lost / duplicated | ${pa ? `${pa.lost} / ${pa.duplicates}` : '–'} | ${pb ? `${pb.lost} / ${pb.duplicates}` : '–'} | |`);
    }
  }
  const ia = r.parley.idle;
  const ib = r.peer.idle;
  if (ia || ib) {
    rows.push(
      `| idle connections | per GiB of server memory | ${ia ? int(ia.connectionsPerGiB) : '–'} | ${ib ? int(ib.connectionsPerGiB) : '–'} | ${ratio(ia?.connectionsPerGiB, ib?.connectionsPerGiB)} |`,
    );
    rows.push(
      `| idle connections | KiB per connection | ${ia ? f2(ia.bytesPerConnection / 1024) : '–'} | ${ib ? f2(ib.bytesPerConnection / 1024) : '–'} | ${ratio(ia?.bytesPerConnection, ib?.bytesPerConnection)} |`,
    );
    rows.push(
      `| idle connections | connects/s while opening | ${ia ? int(ia.connectsPerSecond) : '–'} | ${ib ? int(ib.connectsPerSecond) : '–'} | ${ratio(ia?.connectsPerSecond, ib?.connectsPerSecond)} |`,
    );
  }
  const sa = r.parley.storm;
  const sb = r.peer.storm;
  if (sa || sb) {
    const label = `reconnect storm (${sa?.clients ?? sb?.clients} clients, one server process)`;
    const all = (s?: StormResult | null) => (!s ? '–' : s.allResumedSeconds === null || s.failed > 0 ? `not all (${s.failed} never)` : f2(s.allResumedSeconds));
    rows.push(`| ${label} | all resumed within s | ${all(sa)} | ${all(sb)} | ${ratio(sa?.allResumedSeconds, sb?.allResumedSeconds)} |`);
    rows.push(
      `| ${label} | p50 / p99 s | ${sa ? `${f2(sa.p50Seconds)} / ${f2(sa.p99Seconds)}` : '–'} | ${sb ? `${f2(sb.p50Seconds)} / ${f2(sb.p99Seconds)}` : '–'} | |`,
    );
    rows.push(`| ${label} | resumed / failed / wrong / duplicated | ${sa ? stormCounts(sa) : '–'} | ${sb ? stormCounts(sb) : '–'} | |`);
    rows.push(
      `| ${label} | server CPU s, all processes | ${sa ? f1(sa.allServerCpuSeconds) : '–'} | ${sb ? f1(sb.allServerCpuSeconds) : '–'} | ${ratio(sa?.allServerCpuSeconds, sb?.allServerCpuSeconds)} |`,
    );
    rows.push(
      `| ${label} | gateway-only CPU s | ${sa ? f1(sa.serverCpuSeconds) : '–'} | ${sb ? f1(sb.serverCpuSeconds) : '–'} | ${ratio(sa?.serverCpuSeconds, sb?.serverCpuSeconds)} |`,
    );
  }
  return rows;
}

const resumedIn = (s: StormResult) =>
  s.allResumedSeconds === null || s.failed > 0
    ? `(not all by the deadline; the last of them after ${f2(s.lastResumedSeconds ?? 0)} s)`
    : `within ${f2(s.allResumedSeconds)} s`;
const stormCounts = (s: StormResult) => `${s.resumed} / ${s.failed} / ${s.wrongCount} / ${s.duplicates}`;

const failedSends = (p: PhaseResult) =>
  Object.entries(p.failed)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || (p.behind ? `behind ${p.behind}` : '0');

const byKind = (p: PhaseResult) =>
  Object.entries(p.cpuUsBy ?? {})
    .map(([k, v]) => `${k} ${f1(v / 1e6)}`)
    .join(', ');

function phaseRow(system: string, what: string, p: PhaseResult): string {
  return `| ${system} | ${what} | ${p.name}${p.requestedRate ? ` (asked ${int(p.requestedRate)}/s)` : ''} | ${int(p.sendsPerSecond)} | ${int(p.deliveriesPerSecond)} | ${p.latencyMs.p50} / ${p.latencyMs.p99} / ${p.latencyMs.max} | ${p.lost} / ${p.duplicates} | ${failedSends(p)} | ${f1((p.allServerCpuUs ?? 0) / 1e6)} (${byKind(p)}) | ${f1(p.allCpuPerSendUs ?? 0)} / ${f2(p.allCpuPerDeliveryUs ?? 0)} | ${int(p.sendsPerServerCpuSecond ?? 0)} | ${f1(p.loadCpuUs / 1e6)} |`;
}

const DETAIL_HEADER = [
  '| system | topology | phase | sends/s | deliveries/s | p50 / p99 / max ms | lost / dup | failed sends | server CPU s, all processes (by kind) | server CPU µs per send / per delivery | sends per server CPU-s | load generator CPU s |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
];

function details(r: SuiteResult): string[] {
  const out = [...DETAIL_HEADER];
  for (const system of ['parley', 'peer'] as const) {
    for (const f of r[system].fanout) for (const p of f.phases) out.push(phaseRow(system, `${f.topology} (${f.connections} conns)`, p));
  }
  return out;
}

/** The headline: sends per second of all-process server CPU, Parley / peer, per scenario (latest.json's figures). */
function headline(r: SuiteResult): string[] {
  const rows = summarize(r);
  const out = [
    '| scenario | CPU phase | server CPU µs per send, Parley / peer | sends per server CPU-second, Parley / peer | Parley / peer |',
    '|---|---|---|---|---|',
  ];
  for (const a of rows.filter((x) => x.system === 'parley')) {
    const b = rows.find((x) => x.system === 'peer' && x.scenario === a.scenario);
    out.push(
      `| ${a.scenario} | ${a.cpuPhase ?? '–'} | ${a.serverCpuUsPerSend ?? '–'} / ${b?.serverCpuUsPerSend ?? '–'} | ${a.sendsPerCpuSecond ? int(a.sendsPerCpuSecond) : '–'} / ${b?.sendsPerCpuSecond ? int(b.sendsPerCpuSecond) : '–'} | ${ratio(a.sendsPerCpuSecond, b?.sendsPerCpuSecond)} |`,
    );
  }
  return out;
}

/** Scale-out: one row per configuration and phase, all server processes counted. */
export function scaleoutReport(r: Pick<SuiteResult, 'scaleout'>): string[] {
  const out = [
    '| replicas | NATS servers | stream shards | gateways | phase | sends/s | deliveries/s | p50 / p99 ms | lost / dup | failed sends | server CPU µs per send (all processes) | sends per server CPU-s | server CPU s by kind |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const c of r.scaleout ?? []) {
    for (const p of c.fanout.phases) {
      out.push(
        `| R${c.replicas} | ${c.natsServers} | ${c.shards ?? 1} | ${c.gateways} | ${p.name} | ${int(p.sendsPerSecond)} | ${int(p.deliveriesPerSecond)} | ${p.latencyMs.p50} / ${p.latencyMs.p99} | ${p.lost} / ${p.duplicates} | ${failedSends(p)} | ${f1(p.allCpuPerSendUs)} | ${int(p.sendsPerServerCpuSecond)} | ${byKind(p)} |`,
      );
    }
  }
  return out;
}

export function markdownReport(r: SuiteResult): string {
  const m = r.machine;
  const lines = [
    `# Parley benchmark (${r.scale} run)`,
    '',
    `- date: ${r.startedAt} to ${r.finishedAt}`,
    `- machine: ${m.nproc} CPUs (${m.cpuModel}), ${gib(m.memoryBytes)} memory, ${m.kernel}, Node ${m.node}, open files ${m.openFilesLimit}`,
    `- load average at start ${m.loadAverage.map(f2).join(' ')}, at end ${r.loadAverageAtEnd.map(f2).join(' ')} (the machine is shared)`,
    `- commit: ${r.commit}`,
    `- load generator: ${r.loadWorkers} processes`,
    '',
  ];
  // A scale-out-only run (`--only scaleout`) has no side-by-side figures.
  const sideBySide = r.parley.fanout.length + r.peer.fanout.length > 0 || r.parley.idle || r.peer.idle || r.parley.storm || r.peer.storm || r.external.length;
  if (sideBySide) {
    lines.push('## Brief targets', '', ...targets(r), '');
    lines.push('## Headline: sends per server CPU-second (every server process counted)', '', ...headline(r), '');
    lines.push('## Parley and the peer, side by side', '', ...comparison(r), '');
  }
  if (r.parleyStormAtTarget) {
    const s = r.parleyStormAtTarget;
    lines.push(
      '## Parley reconnect storm at the brief size',
      '',
      `${int(s.resumed)}/${int(s.clients)} resumed over ${s.gateways} gateway processes, ${resumedIn(s)} (p50 ${f2(s.p50Seconds)} s, p99 ${f2(s.p99Seconds)} s); ${s.retries} retries; statuses ${JSON.stringify(s.statuses)}; missed deliveries ${int(s.missedEvents)}, delivered ${int(s.eventsDelivered)}; wrong ${s.wrongCount}, duplicated ${s.duplicates}; gateway CPU ${f1(s.serverCpuSeconds)} s, workers ${f1(s.supportCpuSeconds)} s, NATS + Postgres ${f1(s.infraCpuSeconds)} s.`,
      '',
    );
  }
  if (r.parley.fanout.length || r.peer.fanout.length) lines.push('## Every phase', '', ...details(r), '');
  if (r.scaleout?.length)
    lines.push(`## Scale-out: replication and a second gateway (groups of ${r.scaleout[0]!.fanout.membersPerConversation})`, '', ...scaleoutReport(r), '');
  const notes = [...r.parley.notes.map((n) => `parley: ${n}`), ...r.peer.notes.map((n) => `peer: ${n}`)];
  if (notes.length) lines.push('## Notes', '', ...notes.map((n) => `- ${n}`), '');
  if (r.external.length) {
    lines.push('## Separate benchmarks', '');
    for (const e of r.external) {
      lines.push(`### ${e.file} ${e.args.join(' ')}`, '');
      if (!e.present) lines.push('not present in this tree', '');
      else lines.push('```', ...e.output, '```', '');
    }
  }
  return lines.join('\n');
}
