import { describe, expect, it } from 'vitest';
import { loadConfig } from './runtime/config.js';
import { decideAddMembers, decideCreate, decideLeave, decideRemove, decideSetRole, decideTransfer } from './domain/conversation/decide-membership.js';
import { decideDelete, decideEdit, decideReaction, decideRecall, decideSend } from './domain/conversation/decide-messages.js';
import { emptyConversation, evolve, priorSend } from './domain/conversation/state.js';
import { directConversationId } from './domain/direct.js';
import { KeyedQueue } from './concurrency/keyed-queue.js';
import { LruMap } from './limits/lru.js';
import { parseSnowflake, PARLEY_EPOCH_MS, SnowflakeGenerator } from './ids/snowflake.js';

describe('snowflake ids', () => {
  it('are unique, increasing, and carry time and node', () => {
    let t = PARLEY_EPOCH_MS + 1000;
    const gen = new SnowflakeGenerator(7, () => t);
    const ids = Array.from({ length: 10_000 }, () => gen.next());
    expect(new Set(ids).size).toBe(ids.length);
    const sorted = [...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    expect(sorted).toEqual(ids);
    expect(parseSnowflake(ids[0]!)).toEqual({ timeMs: t, nodeId: 7, sequence: 0 });
    t -= 500; // clock goes backwards: ids must not
    expect(BigInt(gen.next()) > BigInt(ids[ids.length - 1]!)).toBe(true);
  });
});

describe('conversation decider', () => {
  const now = 1_700_000_000_000;
  const rules = { recallWindowMs: 120_000, maxReactionsPerMessage: 2 };
  const ctx = (actor: string, at = now) => ({ actor, now: at, rules });
  const fresh = () => {
    const s = emptyConversation('g_1');
    const created = decideCreate(
      s,
      {
        kind: 'group',
        title: 'T',
        members: [
          { userId: 'own', role: 'owner' },
          { userId: 'adm', role: 'admin' },
          { userId: 'mem', role: 'member' },
        ],
      },
      ctx('own'),
    );
    evolve(s, created, 1);
    const sent = decideSend(s, { messageId: '100', clientMsgId: 'c1', text: 'hello @mem and @nobody' }, ctx('mem'));
    evolve(s, sent, 2);
    return { s, sent };
  };

  it('creates once', () => {
    const { s } = fresh();
    expect(s).toMatchObject({ exists: true, kind: 'group' });
    expect(() => decideCreate(s, { kind: 'group', title: 'T', members: [{ userId: 'own', role: 'owner' }] }, ctx('own'))).toThrow(
      expect.objectContaining({ code: 'conflict' }),
    );
  });

  it('sends as the actor and parses mentions of members only (not oneself)', () => {
    const { s } = fresh();
    const e = decideSend(s, { messageId: '101', clientMsgId: 'c2', text: 'cc @adm @mem @ghost, mail a@mem.com' }, ctx('own'));
    expect(e).toMatchObject({ type: 'message.sent', actor: 'own', data: { mentions: ['adm', 'mem'] } });
    expect(() => decideSend(s, { messageId: '1', clientMsgId: 'c', text: 'x' }, ctx('zed'))).toThrow(expect.objectContaining({ code: 'not_member' }));
    expect(() => decideSend(emptyConversation('g_2'), { messageId: '1', clientMsgId: 'c', text: 'x' }, ctx('own'))).toThrow(
      expect.objectContaining({ code: 'not_member' }),
    );
  });

  it("remembers each sender's client message ids, and whether it saw the conversation from its start", () => {
    const { s, sent } = fresh();
    expect(s.fromStart).toBe(true);
    expect(priorSend(s, 'mem', 'c1')).toMatchObject({ messageId: '100', info: { seq: 2, at: sent.at } });
    // Client ids are per sender: another member may use the same one.
    expect(priorSend(s, 'own', 'c1')).toBeNull();
    expect(priorSend(s, 'mem', 'c2')).toBeNull();
    // Folded from the middle (the start aged out of the log): the state cannot vouch that an id is new.
    const tail = emptyConversation('g_1');
    evolve(tail, sent, 2);
    expect(tail.fromStart).toBe(false);
    expect(priorSend(tail, 'mem', 'c1')).toMatchObject({ messageId: '100' });
  });

  it('recalls only by the sender, once, within the window', () => {
    const { s } = fresh();
    expect(() => decideRecall(s, '100', ctx('own'))).toThrow(expect.objectContaining({ code: 'forbidden' }));
    expect(() => decideRecall(s, '100', ctx('mem', now + 120_001))).toThrow(expect.objectContaining({ code: 'window_expired' }));
    const r = decideRecall(s, '100', ctx('mem', now + 60_000))!;
    evolve(s, r, 3);
    expect(decideRecall(s, '100', ctx('mem'))).toBeNull();
    expect(() => decideEdit(s, '100', 'x', ctx('mem'))).toThrow(expect.objectContaining({ code: 'not_found' }));
  });

  it('lets only admins delete and enforces the distinct-emoji limit', () => {
    const { s } = fresh();
    expect(() => decideDelete(s, '100', ctx('mem'))).toThrow(expect.objectContaining({ code: 'forbidden' }));
    for (const [i, emoji] of ['👍', '🎉'].entries()) evolve(s, decideReaction(s, '100', emoji, true, ctx('own'))!, 10 + i);
    expect(decideReaction(s, '100', '👍', true, ctx('own'))).toBeNull();
    expect(decideReaction(s, '100', '👍', true, ctx('adm'))).not.toBeNull();
    expect(() => decideReaction(s, '100', '😀', true, ctx('adm'))).toThrow(expect.objectContaining({ code: 'limit_exceeded' }));
    expect(decideDelete(s, '100', ctx('adm'))).toMatchObject({ type: 'message.deleted' });
  });

  it('applies role rules to membership changes', () => {
    const { s } = fresh();
    expect(() => decideAddMembers(s, ['x'], ctx('mem'))).toThrow(expect.objectContaining({ code: 'forbidden' }));
    expect(decideAddMembers(s, ['mem', 'x', 'x'], ctx('adm'))).toMatchObject({ data: { members: [{ userId: 'x', role: 'member' }] } });
    expect(decideAddMembers(s, ['mem'], ctx('adm'))).toBeNull();
    expect(() => decideRemove(s, 'own', ctx('adm'))).toThrow(expect.objectContaining({ code: 'forbidden' }));
    expect(() => decideRemove(s, 'adm', ctx('adm2'))).toThrow();
    expect(() => decideLeave(s, ctx('own'))).toThrow(expect.objectContaining({ message: expect.stringMatching(/transfer/) }));
    expect(() => decideSetRole(s, 'mem', 'admin', ctx('adm'))).toThrow(expect.objectContaining({ code: 'forbidden' }));
    evolve(s, decideTransfer(s, 'mem', ctx('own'))!, 20);
    expect(s.members.get('mem')).toBe('owner');
    expect(s.members.get('own')).toBe('admin');
  });

  it('derives one 1:1 id per unordered pair', () => {
    expect(directConversationId('a', 'b')).toBe(directConversationId('b', 'a'));
    expect(directConversationId('a', 'b')).not.toBe(directConversationId('a', 'c'));
    // No separator ambiguity: ("ab","c") and ("a","bc") differ.
    expect(directConversationId('ab', 'c')).not.toBe(directConversationId('a', 'bc'));
  });
});

describe('keyed queue', () => {
  it('serialises per key and runs keys concurrently', async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    const task = (name: string, ms: number) => () => new Promise<void>((r) => setTimeout(() => (log.push(name), r()), ms));
    await Promise.all([q.run('a', task('a1', 30)), q.run('a', task('a2', 1)), q.run('b', task('b1', 5))]);
    expect(log).toEqual(['b1', 'a1', 'a2']);
    await expect(q.run('a', async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(await q.run('a', async () => 42)).toBe(42); // a failure does not wedge the key
    await new Promise((r) => setImmediate(r)); // tails are dropped a microtask after they settle
    expect(q.pendingKeys).toBe(0);
  });
});

describe('lru map', () => {
  it('evicts the least recently used entry', () => {
    const m = new LruMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    m.get('a');
    m.set('c', 3);
    expect(m.get('b')).toBeUndefined();
    expect(m.get('a')).toBe(1);
  });
});

describe('config', () => {
  it('has working embedded defaults', () => {
    const c = loadConfig({}, '/srv/parley');
    expect(c).toMatchObject({ dataDir: '/srv/parley/.parley', namespace: 'parley', gateway: { port: 8080 }, nats: { url: undefined, syncInterval: '1s' } });
    expect(c.auth.devTokens).toBe(true);
  });

  it('turns dev tokens off when a production key is configured', () => {
    expect(loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(40) }).auth.devTokens).toBe(false);
  });

  it('rejects invalid values with a message naming each variable', () => {
    expect(() => loadConfig({ PORT: 'eighty', NODE_ID: '5000' })).toThrow(/PORT[\s\S]*NODE_ID|NODE_ID[\s\S]*PORT/);
  });
});
