import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upcasters } from '../contracts/index.js';
import { main } from '../ops/cli/main.js';
import { parked } from '../ops/cli/parked.js';
import { projectors } from '../ops/cli/projectors.js';
import { listParked } from '../services/projector/parked.js';
import { cliIO } from './support/cli.js';
import { appendAll, appendRaw, created, sent, waitUntil } from './support/events.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';

/**
 * The notifier is a projection like the read model, and operators see and
 * handle it the same way: `projectors list` shows its checkpoint, lag and
 * parked events, `parked redrive notifier` re-applies them through the
 * notifier's own projection, `projectors reset notifier` moves it. It is
 * never rebuilt: it has side effects. (Its /healthz lag is in
 * observability.e2e.test.ts.)
 *
 * The parked event is one written by a version of the code this process
 * does not know yet (`message.sent` v0, whose text was `body`), until the
 * test "deploys" its upcaster.
 */
let p: TestPlatform;
let seqs: number[] = [];

async function cli(group: typeof projectors, command: string, args: string[]): Promise<unknown> {
  const out: string[] = [];
  await group.commands[command]!.run(args, cliIO(p, out));
  return JSON.parse(out.join('\n'));
}

beforeAll(async () => {
  p = await startTestPlatform();
  const rt = p.platform.runtime;
  const [first] = await appendAll(rt, [created('g_ops', ['ann', 'ben'])]);
  const old = await appendRaw(rt, rt.subjects.conv('g_ops'), {
    type: 'message.sent',
    v: 0,
    at: Date.now(),
    actor: 'ann',
    data: { conversationId: 'g_ops', messageId: '4242', body: 'from an older version 📜' },
  });
  const [behind] = await appendAll(rt, [sent('g_ops', 'ben', 'held behind it')]);
  seqs = [first!, old, behind!];
  await waitUntil(
    async () => (await listParked(rt.db, { projector: 'notifier' })).length === 2,
    10_000,
    'the notifier to park the event and hold the next one',
  );
  await waitUntil(async () => (await p.platform.notifier!.runner.lag()) === 0, 10_000, 'the notifier to catch up');
});

afterAll(async () => {
  delete upcasters['message.sent@0'];
  await p?.stop();
});

describe('the notifier in the operator CLI', () => {
  it('is listed with its checkpoint, lag and parked counts, and cannot be rebuilt', async () => {
    const rows = (await cli(projectors, 'list', [])) as { projector: string; checkpoint: number }[];
    const notifier = rows.find((r) => r.projector === 'notifier');
    expect(notifier).toMatchObject({ consumer: `${p.namespace}-notifier`, lag: 0, parked: 1, held: 1, epochMatchesStream: true, rebuildable: false });
    expect(notifier!.checkpoint).toBeGreaterThanOrEqual(seqs[2]!);

    const listed: string[] = [];
    await parked.commands.list!.run(['--projector', 'notifier'], cliIO(p, listed));
    expect(listed.map((l) => JSON.parse(l))).toMatchObject([
      { projector: 'notifier', seq: seqs[1], entity: 'conv:g_ops', status: 'parked', reason: expect.stringContaining('undecodable') },
      { projector: 'notifier', seq: seqs[2], entity: 'conv:g_ops', status: 'held' },
    ]);

    const err: string[] = [];
    expect(await main(['projectors', 'rebuild', 'notifier'], cliIO(p, [], err))).toBe(1);
    expect(err.join('\n')).toContain('projector notifier cannot be rebuilt');
  });

  it("re-drives its parked events through the notifier's projection once they can be read, in order, unblocking the conversation", async () => {
    const failed: string[] = [];
    expect(await main(['parked', 'redrive', 'notifier', 'conv:g_ops'], cliIO(p, failed))).toBe(1);
    expect(JSON.parse(failed[0]!)).toMatchObject({ ok: false, entity: 'conv:g_ops', seq: seqs[1] });

    upcasters['message.sent@0'] = (e) => {
      const d = e.data as { conversationId: string; messageId: string; body: string };
      return { ...e, v: 1, data: { conversationId: d.conversationId, messageId: d.messageId, clientMsgId: `v0-${d.messageId}`, text: d.body } };
    };
    const out: string[] = [];
    await parked.commands.redrive!.run(['notifier', 'conv:g_ops'], cliIO(p, out));
    expect(JSON.parse(out[0]!)).toEqual({ ok: true, entity: 'conv:g_ops', applied: [seqs[1], seqs[2]] });
    expect(await listParked(p.platform.runtime.db, { projector: 'notifier' })).toEqual([]);
    expect((await listParked(p.platform.runtime.db, { projector: 'notifier', status: 'redriven' })).map((r) => r.seq)).toEqual([seqs[1], seqs[2]]);
    // The read model parked the same event on its own; re-driving the notifier leaves it to its operator.
    expect((await listParked(p.platform.runtime.db, { projector: 'read-model' })).map((r) => r.status)).toEqual(['parked', 'held']);
  });

  it('resets its checkpoint: the running notifier reopens there and applies the log again, creating nothing twice', async () => {
    const db = p.platform.runtime.db;
    const at = p.platform.notifier!.runner.checkpoint;
    const checkpoint = async () =>
      Number((await db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', 'notifier').executeTakeFirstOrThrow()).seq);
    const rows = () =>
      db
        .selectFrom('notifications')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow();
    const before = await rows();
    expect(await cli(projectors, 'reset', ['notifier', '--to-seq', '0'])).toMatchObject({ projector: 'notifier', from: at, to: 0, consumerDeleted: true });
    // The row says 0 now; it is back only once the running notifier has applied the log again.
    await waitUntil(async () => (await checkpoint()) >= at, 10_000, 'the notifier to re-apply the log');
    // (That a replay notifies nobody again, members with channels included, is notifications.e2e.test.ts's.)
    expect(await rows()).toEqual(before);
  });
});

describe('nothing unexpected was logged', () => {
  // The membership reactor reads only membership changes: an unreadable message is none of its business (not validated, not logged).
  it('has no error log lines but those about the unreadable event: parked by both projections', () => {
    const lines = p.errorLogs.map((l) => JSON.parse(l) as { msg: string; projector?: string; service?: string; seq: number });
    expect(lines.map((l) => [l.msg, l.projector ?? l.service, l.seq]).sort()).toEqual([
      ['event parked: its entity waits for a re-drive', 'notifier', seqs[1]],
      ['event parked: its entity waits for a re-drive', 'read-model', seqs[1]],
    ]);
  });
});
