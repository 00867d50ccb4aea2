/**
 * CPU the workers cause per event (not a test; issue 16): the workers process
 * (projector, membership reactor, analytics with chDB inside, notifier), and
 * the nats-server and Postgres work they cause, with no gateway traffic in
 * the way. A private nats-server and Postgres, the bench's Parley processes
 * (one workers process, one idle gateway), 100 groups of 10 created over
 * HTTP; then each phase appends `message.sent` events straight to the log
 * (EventStore.append, as the write side does) at a fixed rate, waits until
 * the read model and the notifier have applied every one, and prints the CPU
 * each kind of process spent meanwhile, per event, and the workers' threads
 * (`node` is the JavaScript thread; chDB's threads have their own names).
 * `idle:<s>` measures a phase without traffic.
 *
 *   npx tsx ops/bench/workers-cost.ts [--phases idle:20,1000:10,3000:5]
 *
 * The appends themselves are part of the nats-server figure (about 70 µs per
 * append here, measured alone).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { subjectsFor, type ParleyEvent } from '../../contracts/index.js';
import { connectNats } from '../../services/event-log/connection.js';
import { EventStore } from '../../services/event-log/event-store.js';
import { createLogger } from '../../services/observability/logger.js';
import { postgresPids, startPrivateStack } from './lib/private-stack.js';
import { sampleProcess, sampleTreeCpuUs } from './lib/proc.js';
import { startParley } from './targets/parley.js';

const { values } = parseArgs({ options: { phases: { type: 'string', default: 'idle:20,1000:10,3000:5' } } });
const phases = values.phases.split(',').map((p) => {
  const [rate, seconds] = p.split(':');
  return { rate: rate === 'idle' ? 0 : Number(rate), seconds: Number(seconds) };
});
const out = (line: string) => process.stdout.write(line + '\n');
const log = createLogger({ level: 'warn', write: (l) => process.stderr.write(l + '\n') });
/** Every phase waits at most this long for the projections to catch up. */
const SETTLE_TIMEOUT_MS = 120_000;

/** CPU ms per thread name of a process (threads of one name summed). */
function threadCpuMs(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byName.set(name, (byName.get(name) ?? 0) + (Number(rest[11]) + Number(rest[12])) * 10);
    } catch {
      // exited meanwhile
    }
  }
  return byName;
}

const stack = await startPrivateStack({ postgres: true, syncInterval: '2m', tag: 'workers' });
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-bench-workers-'));
const namespace = 'wcost';
const target = await startParley({ natsUrl: stack.nats!.url, databaseUrl: stack.databaseUrl!, namespace, dataDir, gateways: 1 });
const nats = await connectNats(stack.nats!.url, 'bench-workers-cost', log);
const db = new pg.Pool({ connectionString: stack.databaseUrl!, max: 2 });
try {
  const subjects = subjectsFor(namespace);
  const store = new EventStore(nats.nc, nats.js, nats.jsm, subjects.stream(0));
  const specs = Array.from({ length: 100 }, (_, c) => ({ kind: 'group' as const, members: Array.from({ length: 10 }, (_, m) => `u${c}-${m}`) }));
  const ids = await target.createConversations(specs);
  await target.settle();
  const workers = target.supportPids[0]!;
  const postmaster = postgresPids(path.join(stack.dir, 'postgres'))[0]!;
  const sample = () => ({ workers: sampleProcess(workers).cpuUs, nats: sampleProcess(stack.nats!.pid).cpuUs, postgres: sampleTreeCpuUs(postmaster) });
  const checkpoint = async (name: string) =>
    Number((await db.query<{ seq: string }>('SELECT seq FROM projector_checkpoints WHERE projector = $1 AND shard = 0', [name])).rows[0]?.seq ?? 0);
  let n = 0;
  for (const phase of phases) {
    const before = sample();
    const threadsBefore = threadCpuMs(workers);
    const started = performance.now();
    const events = phase.rate * phase.seconds;
    if (events === 0) await new Promise((r) => setTimeout(r, phase.seconds * 1000));
    else {
      let last = 0;
      let sent = 0;
      const pending: Promise<unknown>[] = [];
      while (sent < events) {
        const due = Math.min(events, Math.floor(((performance.now() - started) / 1000) * phase.rate));
        for (; sent < due; sent++) {
          const i = n + sent;
          const c = i % ids.length;
          const actor = specs[c]!.members[i % 10]!;
          const event: ParleyEvent = {
            type: 'message.sent',
            v: 1,
            at: Date.now(),
            actor,
            data: { conversationId: ids[c]!, messageId: String(i + 1), clientMsgId: `wc-${i}`, text: `B|${actor}|${i}|${Date.now()}|workers cost` },
          };
          pending.push(store.append(subjects.conv(ids[c]!), event).then((r) => (last = Math.max(last, r.seq))));
        }
        if (pending.length > 2000) await Promise.all(pending.splice(0));
        await new Promise((r) => setTimeout(r, 2));
      }
      await Promise.all(pending);
      n += events;
      const deadline = Date.now() + SETTLE_TIMEOUT_MS;
      while (Date.now() < deadline && ((await checkpoint('read-model')) < last || (await checkpoint('notifier')) < last))
        await new Promise((r) => setTimeout(r, 20));
    }
    const after = sample();
    const threadsAfter = threadCpuMs(workers);
    const cpu = (k: keyof typeof before) => (after[k] - before[k]) / 1e6;
    const fmt = (s: number) => `${s.toFixed(2)} s` + (events ? ` (${((s * 1e6) / events).toFixed(0)} µs/event)` : '');
    const total = cpu('workers') + cpu('nats') + cpu('postgres');
    out(
      `${events ? `${phase.rate}/s for ${phase.seconds} s` : `idle ${phase.seconds} s`} (${((performance.now() - started) / 1000).toFixed(1)} s until applied): ` +
        `workers ${fmt(cpu('workers'))}, nats ${fmt(cpu('nats'))}, postgres ${fmt(cpu('postgres'))}, all ${fmt(total)}`,
    );
    const threads = [...threadsAfter]
      .map(([name, ms]) => [name, ms - (threadsBefore.get(name) ?? 0)] as const)
      .filter(([, ms]) => ms > 0)
      .sort((a, b) => b[1] - a[1]);
    out(`  workers threads, CPU ms: ${threads.map(([name, ms]) => `${name} ${ms}`).join(', ')}`);
  }
  out(
    `machine: ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
} finally {
  await nats.nc.close();
  await db.end();
  await target.stop();
  await stack.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
