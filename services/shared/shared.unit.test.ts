import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { decide, emptyConversation, evolve } from './domain/conversation.js';
import { directConversationId } from './domain/direct.js';
import { AppError } from './errors.js';
import { KeyedQueue } from './keyed-queue.js';
import { LruMap } from './lru.js';
import { parseSnowflake, PARLEY_EPOCH_MS, SnowflakeGenerator } from './snowflake.js';

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
  const created = decide(emptyConversation('g_1'), { type: 'create', kind: 'group', title: 'T', members: [{ userId: 'a', role: 'owner' }, { userId: 'b', role: 'member' }] }, { actor: 'a', now });
  const state = evolve(emptyConversation('g_1'), created[0] as never, 1);

  it('creates once', () => {
    expect(state).toMatchObject({ exists: true, version: 1, kind: 'group' });
    expect(() => decide(state, { type: 'create', kind: 'group', title: 'T', members: [{ userId: 'a', role: 'owner' }] }, { actor: 'a', now })).toThrow(AppError);
  });

  it('lets members send, as themselves', () => {
    const [event] = decide(state, { type: 'send', messageId: '1', clientMsgId: 'c', text: 'hi' }, { actor: 'b', now });
    expect(event).toMatchObject({ type: 'message.sent', actor: 'b', at: now });
  });

  it('refuses non-members and missing conversations with stable codes', () => {
    const send = { type: 'send' as const, messageId: '1', clientMsgId: 'c', text: 'hi' };
    expect(() => decide(state, send, { actor: 'z', now })).toThrow(expect.objectContaining({ code: 'not_member' }));
    expect(() => decide(emptyConversation('g_2'), send, { actor: 'a', now })).toThrow(expect.objectContaining({ code: 'not_found' }));
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
    expect(c).toMatchObject({ dataDir: '/srv/parley/.parley', namespace: 'parley', gateway: { port: 8080 }, nats: { url: undefined, syncInterval: '2m' } });
    expect(c.auth.devTokens).toBe(true);
  });

  it('turns dev tokens off when a production key is configured', () => {
    expect(loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(40) }).auth.devTokens).toBe(false);
  });

  it('rejects invalid values with a message naming each variable', () => {
    expect(() => loadConfig({ PORT: 'eighty', NODE_ID: '5000' })).toThrow(/PORT[\s\S]*NODE_ID|NODE_ID[\s\S]*PORT/);
  });
});
