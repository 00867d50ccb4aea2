import { describe, expect, it } from 'vitest';
import { usePlatform } from './support/fixture.js';
import { api, TestClient } from './support/ws-client.js';

const fx = usePlatform();
const connect = (userId: string) => fx.connect(userId);

const list = async (userId: string, after: number) =>
  (await api(fx.p.http, 'GET', `/v1/conversations?after=${after}`, await fx.p.token(userId))).body.conversations as any[];

describe('groups: roles and membership', () => {
  it('owner, admins and members each may do exactly what their role allows', async () => {
    const [own, adm, mem, out] = await Promise.all(['own', 'adm', 'mem', 'out'].map(connect));
    const g = await own!.ok({ t: 'create', kind: 'group', title: 'Roles', members: ['adm', 'mem'] });
    const id = g.conversationId as string;
    await mem!.joined(id);

    // Only the owner changes roles.
    expect(await mem!.request({ t: 'set_role', conversationId: id, userId: 'adm', role: 'admin' })).toMatchObject({ t: 'error', code: 'forbidden' });
    await own!.ok({ t: 'set_role', conversationId: id, userId: 'adm', role: 'admin' });

    // Admins add and remove members and rename; members cannot.
    expect(await mem!.request({ t: 'add_members', conversationId: id, userIds: ['out'] })).toMatchObject({ code: 'forbidden' });
    await adm!.ok({ t: 'add_members', conversationId: id, userIds: ['out'] });
    await out!.joined(id);
    const renamed = await adm!.ok({ t: 'rename', conversationId: id, title: 'Roles & rules 规则' });
    await mem!.event('conversation.renamed', (d) => d.conversationId === id && d.title === 'Roles & rules 规则');
    expect(await mem!.request({ t: 'rename', conversationId: id, title: 'nope' })).toMatchObject({ code: 'forbidden' });

    // An admin cannot remove the owner; the owner cannot leave without transferring.
    expect(await adm!.request({ t: 'remove_member', conversationId: id, userId: 'own' })).toMatchObject({ code: 'forbidden' });
    expect(await own!.request({ t: 'leave', conversationId: id })).toMatchObject({ code: 'forbidden' });

    // Removal: the removed member is told, stops receiving, and can no longer post.
    await adm!.ok({ t: 'remove_member', conversationId: id, userId: 'out' });
    await out!.event('membership.left', (d) => d.conversationId === id);
    expect(await out!.send(id, 'still here?')).toMatchObject({ t: 'error', code: 'not_member' });
    await mem!.send(id, 'after removal');
    await own!.message(id, 'after removal');
    expect(out!.frames.some((f) => f.t === 'event' && f.event.data?.text === 'after removal')).toBe(false);

    // Transfer ownership, then the former owner (now admin) may leave.
    await own!.ok({ t: 'transfer_ownership', conversationId: id, userId: 'mem' });
    const left = await own!.ok({ t: 'leave', conversationId: id });
    const memView = (await list('mem', left.seq)).find((c) => c.conversationId === id);
    expect(memView).toMatchObject({ role: 'owner', title: 'Roles & rules 规则', memberCount: 2 });
    expect((await list('own', left.seq)).some((c) => c.conversationId === id)).toBe(false);
    expect((await list('adm', renamed.seq)).find((c) => c.conversationId === id)?.role).toBe('admin');
  });

  it('starts a new group from a 1:1, which stays as it was', async () => {
    const [ann, ben] = await Promise.all(['ann', 'ben'].map(connect));
    const dm = await ann!.ok({ t: 'create', kind: 'direct', peer: 'ben' });
    await ann!.send(dm.conversationId, 'in the 1:1');
    const g = await ann!.ok({ t: 'create', kind: 'group', title: 'From DM', members: ['cat'], fromConversationId: dm.conversationId });
    await ben!.joined(g.conversationId);
    const views = await list('ben', g.seq);
    expect(views.find((c) => c.conversationId === g.conversationId)).toMatchObject({ kind: 'group', memberCount: 3 });
    expect(views.find((c) => c.conversationId === dm.conversationId)).toMatchObject({ kind: 'direct', memberCount: 2, lastMessage: { text: 'in the 1:1' } });
    // Someone outside the 1:1 cannot use it as a template.
    const eve = await connect('eve2');
    expect(await eve.request({ t: 'create', kind: 'group', title: 'x', members: [], fromConversationId: dm.conversationId })).toMatchObject({
      code: 'not_member',
    });
    // A 1:1 has exactly its two members.
    expect(await ann!.request({ t: 'add_members', conversationId: dm.conversationId, userIds: ['cat'] })).toMatchObject({ code: 'forbidden' });
  });
});

describe('channels', () => {
  it('posting is a permission and joining follows the channel policy', async () => {
    const [host, fan, lurker] = await Promise.all(['host', 'fan', 'lurker'].map(connect));
    const ch = await host!.ok({ t: 'create', kind: 'channel', title: 'Announcements', members: ['fan'], postPolicy: 'admins', joinPolicy: 'invite' });
    const id = ch.conversationId as string;
    expect(id).toMatch(/^c_/);
    await fan!.joined(id);
    expect(await fan!.send(id, 'can I post?')).toMatchObject({ t: 'error', code: 'forbidden' });
    await host!.send(id, 'welcome everyone');
    await fan!.message(id, 'welcome everyone');
    // Invite-only: joining alone is refused; an open channel can be joined.
    expect(await lurker!.request({ t: 'join', conversationId: id })).toMatchObject({ code: 'forbidden' });
    expect(await fan!.request({ t: 'set_channel_policies', conversationId: id, postPolicy: 'everyone', joinPolicy: 'open' })).toMatchObject({
      code: 'forbidden',
    });
    await host!.ok({ t: 'set_channel_policies', conversationId: id, postPolicy: 'everyone', joinPolicy: 'open' });
    await lurker!.ok({ t: 'join', conversationId: id });
    await lurker!.joined(id);
    await fan!.send(id, 'now everyone may post');
    await lurker!.message(id, 'now everyone may post');
  });

  it('holds thousands of members: one log write per message, one subscription per gateway', async () => {
    const members = Array.from({ length: 3000 }, (_, i) => `m${i}`);
    const owner = await connect('big-owner');
    const watchers = await Promise.all(['m0', 'm1500', 'm2999'].map(connect));
    // At most 1,000 members per command: create with the first thousand, then add the rest.
    const ch = await owner.ok({ t: 'create', kind: 'channel', title: 'Big', members: members.slice(0, 1000) });
    await owner.ok({ t: 'add_members', conversationId: ch.conversationId, userIds: members.slice(1000, 2000) });
    await owner.ok({ t: 'add_members', conversationId: ch.conversationId, userIds: members.slice(2000) });
    await Promise.all(watchers.map((w) => w.joined(ch.conversationId)));
    const store = fx.p.platform.runtime.store;
    const before = await store.lastSubjectSeq(fx.p.platform.runtime.subjects.conv(ch.conversationId));
    const ack = await owner.send(ch.conversationId, 'hello 3001 people');
    await Promise.all(watchers.map((w) => w.message(ch.conversationId, 'hello 3001 people')));
    expect(await store.lastSubjectSeq(fx.p.platform.runtime.subjects.conv(ch.conversationId))).toBe(ack.result.seq);
    expect(ack.result.seq).toBeGreaterThan(before);
    expect(fx.p.platform.gateway.hub.refs(`conv/${ch.conversationId}`)).toBe(4);
    const view = (await list('m1500', ack.result.seq)).find((c) => c.conversationId === ch.conversationId);
    expect(view).toMatchObject({ kind: 'channel', memberCount: 3001, unread: 1 });
  });
});

it('logged no errors', () => {
  expect(fx.p.errorLogs).toEqual([]);
});
