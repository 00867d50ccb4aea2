import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, ErrorFrame } from '../contracts/index.js';
import { startTestPlatform, type TestPlatform } from './support/platform.js';
import { api, TestClient } from './support/ws-client.js';

let p: TestPlatform;
let conversationId: string;
let mallory: TestClient;
let bystander: TestClient;
let friend: TestClient;

beforeAll(async () => {
  p = await startTestPlatform();
  mallory = await TestClient.connect(p.ws, await p.token('mallory'));
  bystander = await TestClient.connect(p.ws, await p.token('bystander'));
  friend = await TestClient.connect(p.ws, await p.token('friend'));
  const r = await api(p.http, 'POST', '/v1/conversations', await p.token('mallory'), { kind: 'group', title: 'bad input', members: ['bystander', 'friend'] });
  conversationId = r.body.conversationId;
  await Promise.all([mallory, bystander, friend].map((c) => c.joined(conversationId)));
});

afterAll(async () => {
  await Promise.all([mallory, bystander, friend].map((c) => c?.close()));
  await p?.stop();
});

/** After each bad frame: the offender's connection still works, and so does everyone else's. */
async function expectStillServing(tag: string): Promise<void> {
  const text = `still serving after ${tag}`;
  const ack = await bystander.send(conversationId, text);
  expect(ack.t).toBe('ack');
  await Promise.all([friend.message(conversationId, text), mallory.message(conversationId, text)]);
  expect((await mallory.request({ t: 'ping' })).t).toBe('pong');
}

function lastError(client: TestClient, from: number): Promise<Record<string, any>> {
  return client.next((f) => f.t === 'error', 5000, from);
}

describe('bad WebSocket input gets a typed error frame and the connection is kept', () => {
  const cases: { name: string; frame: string | Buffer; binary?: boolean; code: string; id?: string }[] = [
    { name: 'malformed JSON', frame: '{"t":"send", "id": "a1",', code: 'invalid_json' },
    { name: 'a JSON array', frame: '[1,2,3]', code: 'invalid_frame' },
    { name: 'no frame type', frame: '{"id":"a2"}', code: 'invalid_frame', id: 'a2' },
    { name: 'an unknown frame type', frame: '{"t":"launch_missiles","id":"a3"}', code: 'unknown_frame_type', id: 'a3' },
    {
      name: 'wrong field types',
      frame: JSON.stringify({ t: 'send', id: 'a4', conversationId: 42, clientMsgId: ['x'], text: true }),
      code: 'invalid_frame',
      id: 'a4',
    },
    {
      name: 'unknown fields',
      frame: JSON.stringify({ t: 'send', id: 'a5', conversationId: 'g_1', clientMsgId: 'x', text: 'hi', senderId: 'bystander' }),
      code: 'invalid_frame',
      id: 'a5',
    },
    {
      name: 'a NUL character in text',
      frame: JSON.stringify({ t: 'send', id: 'a6', conversationId: 'g_1', clientMsgId: 'x', text: 'a\u0000b' }),
      code: 'invalid_frame',
      id: 'a6',
    },
    {
      name: 'a bidi override in text',
      frame: JSON.stringify({ t: 'send', id: 'a7', conversationId: 'g_1', clientMsgId: 'x', text: 'abc\u202Egnp.exe' }),
      code: 'invalid_frame',
      id: 'a7',
    },
    {
      name: 'empty text',
      frame: JSON.stringify({ t: 'send', id: 'a8', conversationId: 'g_1', clientMsgId: 'x', text: '   ' }),
      code: 'invalid_frame',
      id: 'a8',
    },
    { name: 'a binary frame', frame: Buffer.from('{"t":"ping"}'), binary: true, code: 'binary_not_supported' },
    {
      name: 'an oversized frame',
      frame: JSON.stringify({ t: 'send', id: 'a9', conversationId: 'g_1', clientMsgId: 'x', text: 'x'.repeat(100_000) }),
      code: 'frame_too_large',
    },
  ];

  for (const c of cases) {
    it(`${c.name} -> ${c.code}`, async () => {
      const from = mallory.frames.length;
      mallory.sendRaw(c.frame, c.binary);
      const err = await lastError(mallory, from);
      expect(ErrorFrame.parse(err)).toBeTruthy();
      expect(err.code).toBe(c.code);
      expect(err.retryable).toBe(false);
      if (c.id) expect(err.id).toBe(c.id);
      await expectStillServing(c.name);
    });
  }

  it('stores nothing from rejected frames', async () => {
    const r = await api(p.http, 'GET', `/v1/conversations/${conversationId}/messages?limit=200`, await p.token('friend'));
    expect(r.body.messages.every((m: { senderId: string }) => m.senderId === 'bystander')).toBe(true);
  });

  it('keeps Unicode exactly: emoji ZWJ sequences, CJK, RTL, zero-width joiners and bidi isolates', async () => {
    const texts = ['👩‍👩‍👧‍👦 family', '哪个老铁 mute一下啊😯', 'مرحبا بالعالم', 'zero\u200Bwidth\u200Djoin', 'isolate \u2067עברית\u2069 ok'];
    let last = 0;
    for (const t of texts) last = (await friend.send(conversationId, t)).result.seq;
    const r = await api(p.http, 'GET', `/v1/conversations/${conversationId}/messages?limit=5&after=${last}`, await p.token('friend'));
    expect(r.body.messages.map((m: { text: string }) => m.text).reverse()).toEqual(texts);
  });

  // These two are enforced inside uWebSockets (C++), which drops the TCP
  // connection without a close frame: clients see 1006 (docs/protocol.md).
  it('drops a connection that sends a frame above the hard limit, and the server keeps serving', async () => {
    const victim = await TestClient.connect(p.ws, await p.token('mallory'));
    victim.sendRaw('x'.repeat((1 << 20) + 10));
    expect((await victim.closed).code).toBe(1006);
    await expectStillServing('hard limit');
  });

  it('drops a connection that sends invalid UTF-8 in a text frame, and the server keeps serving', async () => {
    const victim = await TestClient.connect(p.ws, await p.token('mallory'));
    victim.sendRaw(Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]));
    expect((await victim.closed).code).toBe(1006);
    await expectStillServing('invalid utf-8');
  });

  it('closes a connection that keeps sending garbage with the documented policy-violation code', async () => {
    const spammer = await TestClient.connect(p.ws, await p.token('mallory'));
    for (let i = 0; i < 60; i++) spammer.sendRaw('nope');
    const closed = await spammer.closed;
    expect(closed.code).toBe(CloseCode.policyViolation);
    await expectStillServing('garbage flood');
  });
});

describe('bad HTTP input gets a typed error body', () => {
  it('rejects malformed JSON, wrong types, unknown fields and oversized bodies', async () => {
    const token = await p.token('mallory');
    const bad = await api(p.http, 'POST', '/v1/conversations', token, '{"kind":');
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_json' } });
    const types = await api(p.http, 'POST', '/v1/conversations', token, { kind: 'group', title: 7, members: 'x' });
    expect(types).toMatchObject({ status: 400, body: { code: 'invalid_request' } });
    expect(types.body.issues.map((i: { path: string }) => i.path).sort()).toEqual(['members', 'title']);
    const extra = await api(p.http, 'POST', '/v1/conversations', token, { kind: 'direct', peer: 'friend', admin: true });
    expect(extra).toMatchObject({ status: 400, body: { code: 'invalid_request' } });
    const big = await api(p.http, 'POST', '/v1/conversations', token, { kind: 'group', title: 'x', members: Array(60_000).fill('someone') });
    expect(big).toMatchObject({ status: 413, body: { code: 'frame_too_large' } });
    const self = await api(p.http, 'POST', '/v1/conversations', token, { kind: 'direct', peer: 'mallory' });
    expect(self).toMatchObject({ status: 400, body: { code: 'invalid_request' } });
    const query = await api(p.http, 'GET', `/v1/conversations/${conversationId}/messages?limit=abc`, token);
    expect(query).toMatchObject({ status: 400, body: { code: 'invalid_request' } });
    const missing = await api(p.http, 'GET', '/v1/nope', token);
    expect(missing).toMatchObject({ status: 404, body: { code: 'not_found' } });
    const weird = await api(p.http, 'GET', '/v1/conversations/..%2F..%2Fetc/messages', token);
    expect(weird).toMatchObject({ status: 404, body: { code: 'not_found' } });
    await expectStillServing('bad http');
  });

  it('logged no errors', () => {
    expect(p.errorLogs).toEqual([]);
  });
});
