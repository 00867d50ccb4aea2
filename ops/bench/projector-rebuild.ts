/**
 * Projector rebuild benchmark (not a test): a log of N message events in
 * C conversations is written to a private nats-server, projected live by the
 * durable-consumer runner, then rebuilt from the log into shadow tables by
 * the operator path (`parley projectors rebuild read-model`: replay with an
 * ordered consumer, content-hash verification, atomic swap). Postgres is the
 * embedded one with its production settings (fsync on).
 *
 *   npx tsx ops/bench/projector-rebuild.ts [--events 200000] [--conversations 1000] [--burst 8] [--batch 10000]
 *
 * Messages come in bursts, as chats do: a conversation gets a run of
 * consecutive messages (1 to 2 x burst - 1, `burst` on average) from two or three of its
 * members, then another conversation takes over. `--burst 1` spreads every
 * message to another conversation: the worst case for the read model, which
 * updates each touched conversation and sender once per batch.
 *
 * Prints events/s of the live catch-up and of the rebuild's replay, the
 * verify-and-swap time, and CPU microseconds per event of this process and
 * of Postgres, read from /proc.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { subjectsFor } from '../../contracts/index.js';
import { projectionByName } from '../../services/projector/projections.js';
import { rebuild } from '../../services/projector/rebuild.js';
import { ProjectionRunner } from '../../services/projection/runner.js';
import { createDb } from '../../services/read-store/connect.js';
import { migratePostgres } from '../../services/read-store/migrate.js';
import { createLogger } from '../../services/observability/logger.js';
import { connectNats } from '../../services/event-log/connection.js';
import { ensureEventStreams } from '../../services/event-log/streams.js';
import { postgresPids, startPrivateStack } from './lib/private-stack.js';
import { sampleProcess, sampleProcesses } from './lib/proc.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    conversations: { type: 'string', default: '1000' },
    burst: { type: 'string', default: '8' },
    batch: { type: 'string', default: '10000' },
  },
});
const N = Number(values.events);
const C = Number(values.conversations);
const BATCH = Number(values.batch);
const BURST = Number(values.burst);
// A fixed seed: every run replays the same log.
let state = 42;
const random = () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
const out = (line: string) => process.stdout.write(line + '\n');
const log = createLogger({ level: 'warn', write: (l) => process.stderr.write(l + '\n') });

const stack = await startPrivateStack({ postgres: true, tag: 'rebuild' });
const nats = await connectNats(stack.nats!.url, 'bench-rebuild', log);
const db = createDb(stack.databaseUrl!, log);
try {
  const subjects = subjectsFor('parley');
  const shards = await ensureEventStreams(nats.jsm, subjects, { maxAgeDays: 365, duplicateWindowSeconds: 120, maxMsgBytes: 1 << 20 }, log);
  await migratePostgres(db, log);
  const deps = { db, nats, subjects, shards, log };
  const projection = projectionByName(subjects, 'read-model');

  // The log: C groups of 5, then N messages round-robin over them, in several scripts and with emoji.
  const texts = [
    '个人开发可以，看你怎么讲了',
    'Would you please give an example of a bar raising answer?',
    '吹牛就没输过 😂😂',
    'مرحبا بالجميع',
    'ok 👍',
    'Frank, thank you very much! I appreciate it!',
  ];
  const enc = new TextEncoder();
  const t0 = Date.now() - 86_400_000;
  let inFlight: Promise<unknown>[] = [];
  const publish = async (subject: string, event: unknown) => {
    inFlight.push(nats.js.publish(subject, enc.encode(JSON.stringify(event))));
    if (inFlight.length >= 2000) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  };
  const appendStarted = performance.now();
  for (let c = 0; c < C; c++) {
    const members = Array.from({ length: 5 }, (_, i) => ({ userId: `u${(c * 5 + i) % 5000}`, role: i === 0 ? 'owner' : 'member' }));
    await publish(subjects.conv(`g_${c}`), {
      type: 'conversation.created',
      v: 1,
      at: t0,
      actor: members[0]!.userId,
      data: { conversationId: `g_${c}`, kind: 'group', title: `room ${c}`, members },
    });
  }
  for (let i = 0; i < N; ) {
    const c = BURST <= 1 ? i % C : Math.floor(random() * C);
    const run = BURST <= 1 ? 1 : 1 + Math.floor(random() * (2 * BURST - 1));
    const speakers = 2 + Math.floor(random() * 2);
    for (let j = 0; j < run && i < N; j++, i++) {
      const data = {
        conversationId: `g_${c}`,
        messageId: String(7_300_000_000_000_000_000n + BigInt(i)),
        clientMsgId: `c${i}`,
        text: `${texts[i % texts.length]} #${i}`,
      };
      await publish(subjects.conv(`g_${c}`), { type: 'message.sent', v: 1, at: t0 + i, actor: `u${(c * 5 + (j % speakers)) % 5000}`, data });
    }
  }
  await Promise.all(inFlight);
  const lastSeq = (await nats.jsm.streams.info(shards[0]!.stream)).state.last_seq;
  const total = N + C;
  out(
    `log: ${total} events (${C} conversations, ${N} messages in bursts of ${BURST} on average) appended in ${((performance.now() - appendStarted) / 1000).toFixed(1)} s`,
  );

  const pgDir = path.join(stack.dir, 'postgres');
  const measure = async (what: string, fn: () => Promise<void>) => {
    const self0 = sampleProcess(process.pid);
    const pg0 = sampleProcesses(postgresPids(pgDir));
    const started = performance.now();
    await fn();
    const seconds = (performance.now() - started) / 1000;
    const self1 = sampleProcess(process.pid);
    const pg1 = sampleProcesses(postgresPids(pgDir));
    const rate = Math.round(total / seconds);
    out(
      `${what}: ${total} events in ${seconds.toFixed(2)} s = ${rate} events/s; CPU per event: node ${((self1.cpuUs - self0.cpuUs) / total).toFixed(1)} µs, postgres ${((pg1.cpuUs - pg0.cpuUs) / total).toFixed(1)} µs`,
    );
    return rate;
  };

  const runner = new ProjectionRunner(deps, projection, { batchSize: 500 });
  await measure('live runner catch-up (durable consumer, batches of 500, acks)', async () => {
    await runner.start();
    while (runner.checkpoint < lastSeq) await new Promise((r) => setTimeout(r, 50));
  });
  await runner.stop();

  let replaySeconds = 0;
  let replayed = 0;
  const phases: string[] = [];
  let phaseStarted = performance.now();
  const rebuildStarted = performance.now();
  const self0 = sampleProcess(process.pid);
  const pg0 = sampleProcesses(postgresPids(pgDir));
  const report = await rebuild(deps, projection, {
    maxDeliveries: 5,
    batchSize: BATCH,
    onProgress: (step, f) => {
      if (step !== 'replaying') {
        phases.push(`${step} ${((performance.now() - phaseStarted) / 1000).toFixed(2)} s`);
        phaseStarted = performance.now();
      }
      if (step === 'replayed') {
        replaySeconds = Number(f?.seconds);
        replayed = Number(f?.applied);
      }
    },
  });
  const self1 = sampleProcess(process.pid);
  const pg1 = sampleProcesses(postgresPids(pgDir));
  const rebuildSeconds = (performance.now() - rebuildStarted) / 1000;
  out(
    `rebuild replay (ordered consumer into shadow tables, batches of ${BATCH}): ${replayed} events in ${replaySeconds.toFixed(2)} s = ${Math.round(replayed / replaySeconds)} events/s`,
  );
  out(
    `rebuild total (shadow schema, replay, indexes, hash verification of ${report.comparison?.length} tables, swap): ${rebuildSeconds.toFixed(2)} s = ${Math.round(replayed / rebuildSeconds)} events/s end to end; verified equal: ${report.comparison?.every((c) => c.equal)}`,
  );
  out(`  phases: ${phases.join(', ')}`);
  out(`rebuild CPU per event: node ${((self1.cpuUs - self0.cpuUs) / replayed).toFixed(1)} µs, postgres ${((pg1.cpuUs - pg0.cpuUs) / replayed).toFixed(1)} µs`);
  out(
    `machine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
} finally {
  await nats.nc.drain().catch(() => undefined);
  await db.destroy();
  await stack.stop();
}
