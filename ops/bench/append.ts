/**
 * Append throughput of the event log (not a test), with nats-server's
 * JetStream `sync_interval` at the embedded default (1s), the previous one (2m) and `always` (fsync
 * before every acknowledgement). Each run gets a fresh private nats-server
 * started by the embedded stack's own code, the real stream configuration,
 * and the real append path (EventStore.append: Nats-Msg-Id and the expected
 * last sequence of the conversation's subject, as the command layer sends).
 *
 *   npx tsx ops/bench/append.ts [--seconds 5] [--modes 1s,2m,always] [--concurrency 1,16,128]
 *
 * Concurrency is the number of conversations written at the same time
 * (appends to one conversation are sequential, as the write path makes them).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { subjectsFor, type ParleyEvent } from '../../contracts/index.js';
import { createLogger } from '../../services/observability/logger.js';
import { connectNats } from '../../services/event-log/connection.js';
import { EventStore } from '../../services/event-log/event-store.js';
import { ensureEventStreams } from '../../services/event-log/streams.js';
import { startPrivateStack } from './lib/private-stack.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    modes: { type: 'string', default: '1s,2m,always' },
    concurrency: { type: 'string', default: '1,16,128' },
  },
});
const SECONDS = Number(values.seconds);
const out = (line: string) => process.stdout.write(line + '\n');
const log = createLogger({ level: 'warn', write: (l) => process.stderr.write(l + '\n') });
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

async function measure(syncInterval: string, concurrency: number): Promise<void> {
  const stack = await startPrivateStack({ syncInterval, tag: 'append' });
  const nats = await connectNats(stack.nats!.url, 'bench-append', log);
  try {
    const subjects = subjectsFor('parley');
    const [shard] = await ensureEventStreams(nats.jsm, subjects, { maxAgeDays: 365, duplicateWindowSeconds: 120, maxMsgBytes: 1 << 20 }, log);
    const store = new EventStore(nats.nc, nats.js, nats.jsm, shard!.stream);
    const latencies: number[] = [];
    const deadline = performance.now() + SECONDS * 1000;
    let n = 0;
    const writer = async (w: number) => {
      const conversationId = `g_bench${w}`;
      let last = 0;
      while (performance.now() < deadline) {
        const i = n++;
        const event: ParleyEvent = {
          type: 'message.sent',
          v: 1,
          at: Date.now(),
          actor: `u${w}`,
          data: {
            conversationId,
            messageId: String(7_300_000_000_000_000_000n + BigInt(i)),
            clientMsgId: `c${i}`,
            text: `Would you please give an example of a bar raising answer? 谢谢 🙏 #${i}`,
          },
        };
        const started = performance.now();
        last = (await store.append(subjects.conv(conversationId), event, { msgId: `send:${conversationId}:u${w}:c${i}`, expectedLastSubjectSeq: last })).seq;
        latencies.push(performance.now() - started);
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: concurrency }, (_, w) => writer(w)));
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    out(
      `sync_interval=${syncInterval.padEnd(6)} concurrency=${String(concurrency).padStart(3)}: ${String(Math.round(latencies.length / seconds)).padStart(6)} appends/s, ` +
        `latency p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms (${latencies.length} appends)`,
    );
  } finally {
    await nats.nc.drain().catch(() => undefined);
    await stack.stop();
  }
}

for (const mode of values.modes.split(',')) {
  for (const c of values.concurrency.split(',').map(Number)) await measure(mode, c);
}
out(
  `machine: ${os.cpus().length} cores (${os.cpus()[0]?.model}), load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
