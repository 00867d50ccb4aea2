import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upcasters } from '../contracts/index.js';
import { listParked, redrive } from '../services/projector/parked.js';
import type { Projection } from '../services/projection/projection.js';
import { projectionByName } from '../services/projector/projections.js';
import { deleteDurable } from '../services/projection/consumer.js';
import { ProjectionRunner } from '../services/projection/runner.js';
import { createLogger } from '../services/observability/logger.js';
import { appendAll, appendRaw, created, sent, waitUntil } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

/**
 * The projector framework against a real nats-server and Postgres: the read
 * model projection, with faults injected around it, run by the real runner.
 * The platform runs without its own workers so this file owns the runner.
 */
let p: TestPlatform;
let runner: ProjectionRunner;
const poisoned = new Set<string>();
/** Apply calls that fail because they contain a 'flaky' message; the first failure resolves `flakyFailed`. */
let flakyFailuresLeft = 0;
let onFlakyFailure: () => void = () => undefined;

function texts(rows: { text: string }[]): string[] {
  return rows.map((r) => r.text);
}

async function history(conversationId: string) {
  return p.platform.runtime.db.selectFrom('messages').select(['seq', 'text', 'ordinal']).where('conversation_id', '=', conversationId).orderBy('seq').execute();
}

beforeAll(async () => {
  p = await startTestPlatform({ withWorkers: false });
  const real = projectionByName(p.platform.runtime.subjects, 'read-model');
  const faulty: Projection = {
    ...real,
    async apply(trx, batch) {
      for (const e of batch) {
        if (e.event.type !== 'message.sent') continue;
        if (poisoned.has(e.event.data.text)) throw new Error(`cannot project "${e.event.data.text}"`);
        if (e.event.data.text.startsWith('flaky') && flakyFailuresLeft > 0) {
          flakyFailuresLeft--;
          onFlakyFailure();
          throw new Error('flaky failure');
        }
      }
      await real.apply(trx, batch);
    },
  };
  runner = new ProjectionRunner(p.platform.runtime, faulty, { retryDelayMs: 20, maxRetryDelayMs: 100, maxDeliveries: 3, batchSize: 50 });
  await runner.start();
});

afterAll(async () => {
  await runner?.stop();
  await p?.stop();
});

describe('a poison event', () => {
  it('is parked after the bounded deliveries, holds back only its own conversation, and is re-driven in order once fixed', async () => {
    poisoned.add('💥 poison');
    const seqs = await appendAll(p.platform.runtime, [
      created('g_park_a', ['alice', 'bob']),
      created('g_park_b', ['carol', 'dan']),
      sent('g_park_a', 'alice', 'a1'),
      sent('g_park_b', 'carol', 'b1'),
      sent('g_park_a', 'bob', '💥 poison'),
      sent('g_park_b', 'dan', 'b2'),
      sent('g_park_a', 'alice', 'a3 after the poison'),
      sent('g_park_b', 'carol', 'b3'),
    ]);
    await waitUntil(() => runner.checkpoint >= seqs[seqs.length - 1]!, 10_000, 'the runner to pass the poison');
    expect(texts(await history('g_park_b'))).toEqual(['b1', 'b2', 'b3']);
    expect(texts(await history('g_park_a'))).toEqual(['a1']);

    const open = await listParked(p.platform.runtime.db, { projector: 'read-model' });
    expect(open.map((r) => [r.seq, r.status, r.entity])).toEqual([
      [seqs[4], 'parked', 'conv:g_park_a'],
      [seqs[6], 'held', 'conv:g_park_a'],
    ]);
    expect(open[0]!.reason).toContain('cannot project "💥 poison"');
    expect(open[0]!.attempts).toBe(3);

    // Later events: the other conversation flows, this one keeps queueing behind its poison.
    const more = await appendAll(p.platform.runtime, [sent('g_park_a', 'bob', 'a4'), sent('g_park_b', 'dan', 'b4')]);
    await waitUntil(() => runner.checkpoint >= more[1]!);
    expect(texts(await history('g_park_b'))).toEqual(['b1', 'b2', 'b3', 'b4']);
    expect(texts(await history('g_park_a'))).toEqual(['a1']);

    // A re-drive that still fails changes nothing and says why.
    await expect(redrive(p.platform.runtime, runner.projection, 'conv:g_park_a')).rejects.toThrow(/failed at seq/);
    expect(texts(await history('g_park_a'))).toEqual(['a1']);

    poisoned.clear();
    const result = await redrive(p.platform.runtime, runner.projection, 'conv:g_park_a');
    expect(result.applied).toEqual([seqs[4], seqs[6], more[0]]);
    const a = await history('g_park_a');
    expect(texts(a)).toEqual(['a1', '💥 poison', 'a3 after the poison', 'a4']);
    expect(a.map((r) => Number(r.ordinal))).toEqual([1, 2, 3, 4]);
    expect(await listParked(p.platform.runtime.db, { projector: 'read-model' })).toEqual([]);

    // Unblocked: the next event goes straight in.
    const [a5] = await appendAll(p.platform.runtime, [sent('g_park_a', 'alice', 'a5')]);
    await waitUntil(() => runner.checkpoint >= a5!);
    expect(texts(await history('g_park_a'))).toEqual(['a1', '💥 poison', 'a3 after the poison', 'a4', 'a5']);
    await waitUntil(async () => (await runner.lag()) === 0, 5000, 'lag 0');

    const metrics = await p.platform.runtime.metrics.render();
    expect(metrics).toContain('parley_projector_events_total{projector="read-model",outcome="parked"} 1');
    expect(metrics).toContain('parley_projector_events_total{projector="read-model",outcome="held"} 2');
    expect(metrics).toContain('parley_projector_parked_events{projector="read-model",status="parked"} 0');
    expect(p.errorLogs.some((l) => l.includes('event parked'))).toBe(true);
  });
});

describe('a failing batch', () => {
  it('is naked with a delay and redelivered, applied in log order, and parks nothing when it recovers in time', async () => {
    // The first delivery fails twice (the whole batch, then the event alone), the second succeeds.
    flakyFailuresLeft = 2;
    const failed = new Promise<void>((resolve) => (onFlakyFailure = resolve));
    const first = await appendAll(p.platform.runtime, [created('g_flaky', ['erin']), sent('g_flaky', 'erin', 'flaky 1'), sent('g_flaky', 'erin', 'flaky 2')]);
    await failed;
    // Events that arrive while the naked ones are away must wait for them.
    const later: number[] = [];
    for (let i = 0; i < 5; i++) {
      later.push(...(await appendAll(p.platform.runtime, [sent('g_flaky', 'erin', `later ${i}`)])));
    }
    await waitUntil(() => runner.checkpoint >= later[later.length - 1]!, 10_000, 'recovery');
    const rows = await history('g_flaky');
    expect(texts(rows)).toEqual(['flaky 1', 'flaky 2', 'later 0', 'later 1', 'later 2', 'later 3', 'later 4']);
    // Ordinals are given in the order events are applied: any reordering would show here.
    expect(rows.map((r) => Number(r.ordinal))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(rows[0]!.seq).toBe(String(first[1]));
    expect(await listParked(p.platform.runtime.db, { projector: 'read-model', entity: 'conv:g_flaky', status: 'all' })).toEqual([]);
    expect(await p.platform.runtime.metrics.render()).toMatch(/parley_projector_events_total\{projector="read-model",outcome="retried"\} [1-9]/);
  });
});

describe('an event no schema version can read', () => {
  it('is parked at once without retries, and re-driven after an upcaster for its version is deployed', async () => {
    const rt = p.platform.runtime;
    const [c] = await appendAll(rt, [created('g_v0', ['fay', 'gus'])]);
    // A hypothetical version 0 of message.sent: the text was called `body` and there was no client message id.
    const v0 = { type: 'message.sent', v: 0, at: Date.now(), actor: 'fay', data: { conversationId: 'g_v0', messageId: '77', body: 'from the old days' } };
    const old = await appendRaw(rt, rt.subjects.conv('g_v0'), v0);
    const [after] = await appendAll(rt, [sent('g_v0', 'gus', 'current version'), sent('g_park_b', 'carol', 'elsewhere')]);
    await waitUntil(() => runner.checkpoint >= after! + 1);
    expect(texts(await history('g_park_b'))).toContain('elsewhere');
    const open = await listParked(rt.db, { projector: 'read-model', entity: 'conv:g_v0' });
    expect(open.map((r) => [r.seq, r.status, r.attempts])).toEqual([
      [old, 'parked', 1],
      [after, 'held', 1],
    ]);
    expect(open[0]!.reason).toMatch(/^undecodable: /);
    expect(c).toBeLessThan(old);

    upcasters['message.sent@0'] = (e) => {
      const d = e.data as { conversationId: string; messageId: string; body: string };
      return { ...e, v: 1, data: { conversationId: d.conversationId, messageId: d.messageId, clientMsgId: `v0-${d.messageId}`, text: d.body } };
    };
    try {
      await redrive(rt, runner.projection, 'conv:g_v0');
    } finally {
      delete upcasters['message.sent@0'];
    }
    expect(texts(await history('g_v0'))).toEqual(['from the old days', 'current version']);
  });
});

describe('stopping', () => {
  it('returns promptly when the runner is stopped while it reopens after its consumer was deleted (an operator reset)', async () => {
    const rt = p.platform.runtime;
    const lines: string[] = [];
    const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
    const own = new ProjectionRunner(
      { ...rt, log },
      { name: 'stop-probe', filterSubjects: [rt.subjects.allEvents], apply: async () => undefined },
      { retryDelayMs: 300 },
    );
    await own.start();
    await waitUntil(async () => (await own.lag()) === 0, 10_000, 'the probe to catch up');
    await deleteDurable(rt.nats.jsm, rt.shards[0]!.stream, own.consumerName);
    await waitUntil(() => lines.some((l) => l.includes('reopening from the checkpoint')), 10_000, `the runner to notice: ${lines.join('\n')}`);
    // Now in the pause before its next session: that session opens after stop() and must not keep it waiting.
    const stopped = await Promise.race([own.stop().then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
    expect(stopped).toBe(true);
  });
});
