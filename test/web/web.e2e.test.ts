import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, TEST_JWT_SECRET, type TestPlatform } from '../support/platform.js';
import { launchChromium } from './browser.js';
import { solidPng } from './png.js';
import { browserUser, type BrowserUser, messages, messageTexts, send, signIn as signInAt } from './page.js';

/**
 * The web client in a real browser (Debian's chromium through playwright-core),
 * found the way people find things: by role and accessible name, with the exact
 * names docs/web.md promises.
 */

const ARTIFACTS = path.resolve('.parley/test-artifacts/web');
/** PARLEY_DOCS_SCREENSHOTS=1 also refreshes the screenshots docs/web.md shows. */
const DOCS_SHOTS = process.env.PARLEY_DOCS_SCREENSHOTS === '1' ? path.resolve('docs/web') : null;

let p: TestPlatform;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** Every WebSocket URL the pages opened: the token must never be in one (it travels as a subprotocol). */
const socketUrls: string[] = [];

beforeAll(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  [p, browser] = await Promise.all([
    startTestPlatform({ withWorkers: true, env: { RATE_SENDS_PER_SECOND: '1000', RATE_FRAMES_PER_SECOND: '1000', RATE_HTTP_PER_SECOND: '1000' } }),
    launchChromium(),
  ]);
});

afterAll(async () => {
  await Promise.allSettled(contexts.map((c) => c.close()));
  await browser?.close();
  await p?.stop();
});

async function shot(page: Page, name: string, docs = false): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
  if (docs && DOCS_SHOTS) await page.screenshot({ path: path.join(DOCS_SHOTS, `${name}.png`) });
}

function user(viewport?: { width: number; height: number }): Promise<BrowserUser> {
  return browserUser(browser, contexts, { ...(viewport ? { viewport } : {}), onSocket: (url) => socketUrls.push(url) });
}

const signIn = (page: Page, userId: string) => signInAt(page, p.http, userId);
/** The message whose own text is exactly `text` (not one quoting it in a reply). */
const message = (page: Page, text: string): Locator => messages(page).filter({ has: page.getByText(text, { exact: true }) });

async function openConversation(page: Page, name: string): Promise<void> {
  await page
    .getByRole('list', { name: 'Conversations' })
    .getByRole('button', { name: new RegExp(name) })
    .first()
    .click();
}

describe('the web client', () => {
  it('serves the page with a strict CSP and the right content types', async () => {
    const page = await fetch(`${p.http}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toMatch(/connect-src 'self' ws:\/\/127\.0\.0\.1:\d+ wss:\/\/127\.0\.0\.1:\d+/);
    const html = await page.text();
    const js = html.match(/src="(\/app\.js\?v=[0-9a-f]+)"/)![1]!;
    const script = await fetch(`${p.http}${js}`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('cache-control')).toContain('immutable');
    const css = await fetch(`${p.http}/app.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(css.headers.get('cache-control')).toBe('no-cache');
  });

  it('two people chat; one drops offline, the other sends, and on return every message shows once, in order', async () => {
    const alice = await user();
    const bob = await user({ width: 390, height: 780 });
    await shotSignIn(bob.page);
    await Promise.all([signIn(alice.page, 'web-alice'), signIn(bob.page, 'web-bob')]);

    // Alice starts a 1:1 with the contract's names.
    await alice.page.getByRole('button', { name: 'New conversation' }).click();
    await alice.page.getByRole('textbox', { name: 'Members', exact: true }).fill('web-bob');
    await alice.page.getByRole('button', { name: 'Create' }).click();
    await send(alice.page, 'hello @web-bob');
    await expect.poll(() => messageTexts(alice.page)).toEqual(['hello @web-bob']);

    // Bob sees it in his list with unread and mention badges, opens it, answers.
    const bobList = bob.page.getByRole('list', { name: 'Conversations' });
    await expect.poll(() => bobList.getByLabel('1 unread').count(), { timeout: 10_000 }).toBe(1);
    expect(await bobList.getByLabel('1 mention', { exact: true }).count()).toBe(1);
    await openConversation(bob.page, 'web-alice');
    await expect.poll(() => messageTexts(bob.page)).toEqual(['hello @web-bob']);
    // His own mention is highlighted; the 1:1's header says whether Alice is online.
    expect(await bob.page.locator('mark.mention.me').allTextContents()).toEqual(['@web-bob']);
    await expect.poll(() => bob.page.getByText('web-alice is online').count(), { timeout: 10_000 }).toBe(1);
    await send(bob.page, 'hi alice');
    await expect.poll(() => messageTexts(alice.page)).toEqual(['hello @web-bob', 'hi alice']);
    await expect.poll(() => alice.page.getByText('Seen by web-bob').count(), { timeout: 10_000 }).toBe(1);
    await shot(alice.page, 'chat', true);

    // Bob's network drops. Alice keeps writing; Bob writes too, into his queue.
    await bob.goOffline();
    await expect.poll(() => bob.page.getByRole('status').textContent()).toMatch(/^(Offline|Reconnecting)/);
    const fromAlice = Array.from({ length: 5 }, (_, i) => `while you were away ${i + 1}`);
    for (const text of fromAlice) await send(alice.page, text);
    await send(bob.page, 'written offline');
    await expect.poll(() => bob.page.locator('.message.pending').count()).toBe(1);
    await expect.poll(() => bob.page.getByRole('status').textContent()).toContain('1 message waiting to send');
    await shot(bob.page, 'offline', true);
    expect(await messageTexts(bob.page)).toEqual(['hello @web-bob', 'hi alice', 'written offline']);

    // Back online: Bob resumes, sees the continuity answer, and everything once, in order.
    await bob.goOnline();
    await expect.poll(() => bob.page.getByRole('status').textContent(), { timeout: 15_000 }).toMatch(/^Online: gap refilled \(\d+ missed events? replayed\)/);
    const expected = ['hello @web-bob', 'hi alice', ...fromAlice, 'written offline'];
    await expect.poll(() => messageTexts(bob.page), { timeout: 10_000 }).toEqual(expected);
    await expect.poll(() => messageTexts(alice.page), { timeout: 10_000 }).toEqual(expected);
    await shot(bob.page, 'resumed', true);
    // Nothing arrives twice later either (a late duplicate of the queued message would show here).
    await new Promise((r) => setTimeout(r, 500));
    expect(await messageTexts(bob.page)).toEqual(expected);
    expect(await messageTexts(alice.page)).toEqual(expected);
    expect(socketUrls.length).toBeGreaterThanOrEqual(3);
    // The URL carries the resume position at most: no token, whatever its parameter's name.
    expect(socketUrls.flatMap((u) => [...new URL(u).searchParams.keys()].filter((k) => k !== 'position'))).toEqual([]);
  });

  it('loads older history when the message list is scrolled up', async () => {
    const writer = await p.token('web-carol');
    const created = await fetch(`${p.http}/v1/conversations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${writer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'group', title: 'History club', members: ['web-dave'] }),
    }).then((r) => r.json() as Promise<{ conversationId: string }>);
    let last = 0;
    for (let i = 0; i < 70; i++) {
      const res = await fetch(`${p.http}/v1/commands`, {
        method: 'POST',
        headers: { authorization: `Bearer ${writer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ t: 'send', conversationId: created.conversationId, clientMsgId: `seed-${i}`, text: `seed ${String(i).padStart(3, '0')}` }),
      });
      expect(res.status).toBe(200);
      last = ((await res.json()) as { seq: number }).seq;
    }
    // The list reads the projection: wait until it has the last seeded message.
    const dave = await user();
    await fetch(`${p.http}/v1/conversations/${created.conversationId}/messages?limit=1&after=${last}`, {
      headers: { authorization: `Bearer ${await p.token('web-dave')}` },
    });
    await signIn(dave.page, 'web-dave');
    await openConversation(dave.page, 'History club');
    await expect.poll(() => messages(dave.page).filter({ hasText: 'seed 069' }).count()).toBe(1);
    expect(await messages(dave.page).filter({ hasText: 'seed 000' }).count()).toBe(0);
    const list = dave.page.getByRole('list', { name: 'Messages' });
    await expect
      .poll(
        async () => {
          await list.evaluate((el) => (el.scrollTop = 0));
          return messages(dave.page).filter({ hasText: 'seed 000' }).count();
        },
        { timeout: 10_000 },
      )
      .toBe(1);
    const texts = (await messageTexts(dave.page)).filter((t) => t.startsWith('seed'));
    expect(texts).toEqual(Array.from({ length: 70 }, (_, i) => `seed ${String(i).padStart(3, '0')}`));
  });

  it('uploads an image attachment and shows its preview to both sides', async () => {
    const erin = await user();
    const frank = await user();
    await Promise.all([signIn(erin.page, 'web-erin'), signIn(frank.page, 'web-frank')]);
    await erin.page.getByRole('button', { name: 'New conversation' }).click();
    await erin.page.getByRole('textbox', { name: 'Members', exact: true }).fill('web-frank');
    await erin.page.getByRole('button', { name: 'Create' }).click();
    await erin.page.getByLabel('Attach a file').setInputFiles({ name: 'square.png', mimeType: 'image/png', buffer: solidPng(48, 32, [30, 120, 220]) });
    await expect.poll(() => erin.page.locator('.chip').textContent()).toContain('square.png');
    await send(erin.page, 'a picture');
    for (const page of [erin.page, frank.page]) {
      if (page === frank.page) await openConversation(page, 'web-erin');
      const img = page.getByRole('img', { name: 'square.png' });
      await expect.poll(() => img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth), { timeout: 10_000 }).toBe(48);
    }
    await shot(frank.page, 'attachment', true);
  });

  it('replies, reactions, edits, typing, recalls, search, pin, mute, archive, channels and block', async () => {
    const ivy = await user();
    const jack = await user();
    await Promise.all([signIn(ivy.page, 'web-ivy'), signIn(jack.page, 'web-jack')]);
    await ivy.page.getByRole('button', { name: 'New conversation' }).click();
    await ivy.page.getByRole('textbox', { name: 'Members', exact: true }).fill('web-jack');
    await ivy.page.getByRole('button', { name: 'Create' }).click();
    await send(ivy.page, 'first');
    await openConversation(jack.page, 'web-ivy');
    const jackFirst = message(jack.page, 'first');
    await jackFirst.getByRole('button', { name: 'Reply' }).click();
    await send(jack.page, 'an answer');
    await expect.poll(() => message(ivy.page, 'an answer').locator('.reply-to').textContent()).toContain('web-ivy: first');
    await jackFirst.getByRole('button', { name: 'React 👍' }).click();
    await expect.poll(() => message(ivy.page, 'first').getByRole('button', { name: '👍 1' }).count()).toBe(1);

    // Edit through the message box; the other side sees the new text marked edited.
    await message(ivy.page, 'first').getByRole('button', { name: 'Edit' }).click();
    await send(ivy.page, 'first, revised');
    await expect.poll(() => message(jack.page, 'first, revised').textContent()).toContain('(edited)');
    expect(await messageTexts(jack.page)).toEqual(['first, revised', 'an answer']);

    await jack.page.getByRole('textbox', { name: 'Message' }).pressSequentially('hm');
    await expect.poll(() => ivy.page.getByText('web-jack is typing…').count(), { timeout: 5000 }).toBe(1);

    await message(ivy.page, 'first, revised').getByRole('button', { name: 'Recall' }).click();
    await expect.poll(() => messages(jack.page).first().textContent()).toContain('Message recalled');

    await jack.page.getByRole('searchbox').fill('answer');
    await jack.page.getByRole('button', { name: 'Search', exact: true }).click();
    await expect.poll(() => jack.page.getByRole('list', { name: 'Search results' }).getByRole('listitem').first().textContent()).toContain('an answer');

    // Preferences: pin and mute show in the list; archive moves it to the archived list.
    const jackList = jack.page.getByRole('list', { name: 'Conversations' });
    await jack.page.getByRole('button', { name: 'Pin', exact: true }).click();
    await expect.poll(() => jack.page.getByRole('button', { name: 'Unpin' }).getAttribute('aria-pressed')).toBe('true');
    await jack.page.getByRole('button', { name: 'Mute', exact: true }).click();
    await expect.poll(() => jackList.getByRole('button', { name: /web-ivy/ }).textContent()).toMatch(/pinned.*muted/);
    await jack.page.getByRole('button', { name: 'Archive', exact: true }).click();
    await expect.poll(() => jackList.getByRole('button', { name: /web-ivy/ }).count()).toBe(0);
    await jack.page.getByLabel('Archived').check();
    await expect.poll(() => jackList.getByRole('button', { name: /web-ivy/ }).count()).toBe(1);

    // A channel.
    await ivy.page.getByRole('button', { name: 'New conversation' }).click();
    await ivy.page.getByLabel('Channel', { exact: true }).check();
    await ivy.page.getByRole('textbox', { name: 'Members', exact: true }).fill('web-jack');
    await ivy.page.getByLabel('Title').fill('announcements');
    await ivy.page.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => ivy.page.getByRole('heading', { level: 2, name: '# announcements' }).count()).toBe(1);
    await send(ivy.page, 'to everyone');
    await expect.poll(() => messageTexts(ivy.page)).toEqual(['to everyone']);

    // Block: Ivy's next message in the 1:1 is refused, and she is told.
    await jack.page.getByRole('button', { name: 'Block', exact: true }).click();
    await expect.poll(() => jack.page.getByRole('button', { name: 'Unblock' }).count()).toBe(1);
    await openConversation(ivy.page, 'web-jack');
    await send(ivy.page, 'are you there?');
    await expect.poll(() => ivy.page.getByText(/Message not sent/).count(), { timeout: 10_000 }).toBe(1);
    await shot(ivy.page, 'features');
  });

  it('joins an open channel by id, sees its messages read-only where only admins post, and leaves it', async () => {
    const kim = await user();
    const lee = await user();
    await Promise.all([signIn(kim.page, 'web-kim'), signIn(lee.page, 'web-lee')]);
    await kim.page.getByRole('button', { name: 'New conversation' }).click();
    await kim.page.getByLabel('Channel', { exact: true }).check();
    await kim.page.getByLabel('Title').fill('open news');
    await kim.page.getByLabel('Open channel').check();
    await kim.page.getByLabel('Only admins post').check();
    await kim.page.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => kim.page.getByRole('heading', { level: 2, name: '# open news' }).count()).toBe(1);
    await send(kim.page, 'welcome, readers');
    await expect.poll(() => messageTexts(kim.page)).toEqual(['welcome, readers']);
    // The header names the id others join with; the owner may post.
    const info = (await kim.page.locator('#conversation-info').textContent()) ?? '';
    expect(info).toMatch(/open, admins post/);
    const channelId = info.match(/id (\S+)$/)?.[1];
    expect(channelId).toBeTruthy();
    expect(await kim.page.getByRole('textbox', { name: 'Message' }).isDisabled()).toBe(false);

    // A wrong id is refused with a reason, not silently.
    await lee.page.getByRole('textbox', { name: 'Channel id' }).fill('c_doesnotexist');
    await lee.page.getByRole('button', { name: 'Join', exact: true }).click();
    await expect.poll(() => lee.page.locator('#join-error').textContent(), { timeout: 10_000 }).toMatch(/^Could not join/);

    await lee.page.getByRole('textbox', { name: 'Channel id' }).fill(channelId!);
    await lee.page.getByRole('button', { name: 'Join', exact: true }).click();
    await expect.poll(() => lee.page.getByRole('heading', { level: 2, name: '# open news' }).count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(() => messageTexts(lee.page), { timeout: 10_000 }).toEqual(['welcome, readers']);
    // Only admins post: the message box is disabled for Lee, with the reason next to it.
    await expect.poll(() => lee.page.getByRole('textbox', { name: 'Message' }).isDisabled()).toBe(true);
    expect(await lee.page.getByRole('button', { name: 'Send', exact: true }).isDisabled()).toBe(true);
    expect(await lee.page.getByText('Only admins can post in this channel.').isVisible()).toBe(true);
    await send(kim.page, 'second post');
    await expect.poll(() => messageTexts(lee.page), { timeout: 10_000 }).toEqual(['welcome, readers', 'second post']);
    await expect
      .poll(() => lee.page.getByRole('list', { name: 'Members' }).getByRole('listitem').allTextContents())
      .toEqual(expect.arrayContaining([expect.stringContaining('web-lee'), expect.stringContaining('web-kim')]));
    await shot(lee.page, 'channel-joined');

    // Leaving takes it out of Lee's list; Kim's header counts one member again.
    await lee.page.getByRole('button', { name: 'Leave', exact: true }).click();
    await expect
      .poll(
        () =>
          lee.page
            .getByRole('list', { name: 'Conversations' })
            .getByRole('button', { name: /open news/ })
            .count(),
        { timeout: 10_000 },
      )
      .toBe(0);
    await expect.poll(() => kim.page.locator('#conversation-info').textContent(), { timeout: 10_000 }).toMatch(/^channel, 1 members/);
  });

  it("lists a group's members with their presence, and renames and adds members from the header", async () => {
    const mia = await user();
    const ned = await user();
    await Promise.all([signIn(mia.page, 'web-mia'), signIn(ned.page, 'web-ned')]);
    await mia.page.getByRole('button', { name: 'New conversation' }).click();
    await mia.page.getByRole('textbox', { name: 'Members', exact: true }).fill('web-ned, web-oz');
    await mia.page.getByLabel('Title').fill('Presence club');
    await mia.page.getByRole('button', { name: 'Create' }).click();
    const members = mia.page.getByRole('list', { name: 'Members' }).getByRole('listitem');
    const state = (id: string) => members.filter({ hasText: id }).textContent();
    await expect.poll(() => state('web-ned'), { timeout: 15_000 }).toBe('web-ned online');
    expect(await state('web-mia')).toBe('web-mia online (you)');
    // web-oz never signed in: offline, never seen.
    await expect.poll(() => state('web-oz')).toBe('web-oz offline');

    // Ned closes his page: within a presence refresh he shows offline with when he was last seen.
    await ned.context.close();
    await expect.poll(() => state('web-ned'), { timeout: 20_000 }).toMatch(/^web-ned offline, last seen \d/);
    await shot(mia.page, 'members', true);

    await mia.page.getByRole('button', { name: 'Rename', exact: true }).click();
    await mia.page.getByRole('textbox', { name: 'New name' }).fill('Presence club 2');
    await mia.page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect.poll(() => mia.page.getByRole('heading', { level: 2, name: 'Presence club 2' }).count(), { timeout: 10_000 }).toBe(1);

    await mia.page.getByRole('textbox', { name: 'Add members' }).fill('web-pat');
    await mia.page.getByRole('button', { name: 'Add', exact: true }).click();
    await expect.poll(() => state('web-pat'), { timeout: 10_000 }).toBe('web-pat offline');
    await expect.poll(() => mia.page.locator('#members-count').textContent(), { timeout: 10_000 }).toBe('(4)');
  });

  it('returns a pasted token that has expired to the sign-in form, saying so, instead of retrying it forever', async () => {
    const { page } = await user();
    await page.goto(p.http);
    const now = Math.floor(Date.now() / 1000);
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'web-ivy', iss: p.config.auth.issuer, iat: now - 3600, exp: now - 60 })}`;
    const expired = `${unsigned}.${createHmac('sha256', TEST_JWT_SECRET).update(unsigned).digest('base64url')}`;
    await page.getByLabel('User id').fill('web-ivy');
    await page.getByLabel(/^Token/).fill(expired);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#signin-error').textContent(), { timeout: 10_000 }).toMatch(/expired/);
    expect(await page.getByRole('button', { name: 'Sign in' }).isVisible()).toBe(true);
  });

  it('on a phone: the list, then the conversation with Back; a download; the owner deletes a message', async () => {
    const rita = await user({ width: 390, height: 780 });
    const sam = await user();
    await Promise.all([signIn(rita.page, 'web-rita'), signIn(sam.page, 'web-sam')]);
    const ritaList = rita.page.getByRole('list', { name: 'Conversations' });
    const ritaMessages = rita.page.getByRole('list', { name: 'Messages' });
    const newButton = rita.page.getByRole('button', { name: 'New conversation' });
    await newButton.click();
    // Two ids make a group (one would open a 1:1), which Rita owns.
    await rita.page.getByRole('textbox', { name: 'Members', exact: true }).fill('web-sam, web-tia');
    await rita.page.getByLabel('Title').fill('Phone group');
    await rita.page.getByRole('button', { name: 'Create' }).click();
    // One column: the open conversation replaces the list.
    await expect.poll(() => ritaMessages.isVisible()).toBe(true);
    expect(await newButton.isVisible()).toBe(false);
    const notes = 'minutes of the meeting\n';
    await rita.page.getByLabel('Attach a file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(notes) });
    await expect.poll(() => rita.page.locator('.chip').textContent()).toContain('notes.txt');
    await send(rita.page, 'the notes');
    await send(rita.page, 'a mistake');
    await openConversation(sam.page, 'Phone group');
    await expect.poll(() => messageTexts(sam.page)).toEqual(['the notes', 'a mistake']);
    // The download carries the uploaded bytes (fetched with the token, never through a URL holding it).
    const [download] = await Promise.all([
      sam.page.waitForEvent('download'),
      message(sam.page, 'the notes')
        .getByRole('button', { name: /^Download notes\.txt/ })
        .click(),
    ]);
    expect(download.suggestedFilename()).toBe('notes.txt');
    expect(fs.readFileSync(await download.path(), 'utf8')).toBe(notes);
    // Sam is a member, not an admin: no Delete. Rita owns the group and deletes for everyone.
    expect(await message(sam.page, 'a mistake').getByRole('button', { name: 'Delete' }).count()).toBe(0);
    await message(rita.page, 'a mistake').getByRole('button', { name: 'Delete', exact: true }).click();
    await expect.poll(() => messages(sam.page).nth(1).textContent(), { timeout: 10_000 }).toContain('Message deleted');
    await shot(rita.page, 'phone');
    await rita.page.getByRole('button', { name: 'Back', exact: true }).click();
    await expect.poll(() => ritaList.getByRole('button', { name: /Phone group/ }).isVisible()).toBe(true);
    expect(await ritaMessages.isVisible()).toBe(false);
  });

  it('keeps a message written offline across a closed tab and sends it once on return, caught up', async () => {
    const tom = await user();
    const uma = await user();
    await Promise.all([signIn(tom.page, 'web-tom'), signIn(uma.page, 'web-uma')]);
    await tom.page.getByRole('button', { name: 'New conversation' }).click();
    await tom.page.getByRole('textbox', { name: 'Members', exact: true }).fill('web-uma');
    await tom.page.getByRole('button', { name: 'Create' }).click();
    await send(tom.page, 'before');
    await openConversation(uma.page, 'web-tom');
    await expect.poll(() => messageTexts(uma.page)).toEqual(['before']);
    // Uma's read reaches Tom before he leaves, so nothing is missed while he is away.
    await expect.poll(() => tom.page.getByText('Seen by web-uma').count(), { timeout: 10_000 }).toBe(1);
    await tom.goOffline();
    await send(tom.page, 'survives the tab');
    await expect.poll(() => tom.page.getByRole('status').textContent()).toContain('1 message waiting to send');
    await tom.page.close();
    await tom.goOnline();
    // A new tab signs in again (the session is per tab); the outbox and position are in localStorage.
    const again = await tom.context.newPage();
    await signIn(again, 'web-tom');
    await expect.poll(() => again.getByRole('status').textContent(), { timeout: 10_000 }).toBe('Online: caught up');
    await expect.poll(() => messageTexts(uma.page), { timeout: 10_000 }).toEqual(['before', 'survives the tab']);
    await openConversation(again, 'web-uma');
    await expect.poll(() => messageTexts(again)).toEqual(['before', 'survives the tab']);
    expect(await again.evaluate("localStorage.getItem('parley.outbox.web-tom')")).toBe('[]');
  });

  it('works with the keyboard alone: sign in, start a conversation, send', async () => {
    const { page } = await user();
    await page.goto(p.http);
    // The user id box has focus on arrival; Enter submits each form; focus moves to what comes next.
    await page.keyboard.type('web-gina');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('status').textContent(), { timeout: 10_000 }).toMatch(/^Online/);
    await page.keyboard.press('Enter');
    await page.keyboard.type('web-hank');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate('document.activeElement && document.activeElement.id')).toBe('message-input');
    await page.keyboard.type('typed, never clicked');
    await page.keyboard.press('Enter');
    await expect.poll(() => messageTexts(page)).toEqual(['typed, never clicked']);
    // Shift+Tab from the box reaches the message's actions; Enter on Edit puts the text back in the box for editing.
    for (let i = 0; i < 8 && (await page.evaluate('document.activeElement && document.activeElement.textContent')) !== 'Edit'; i++)
      await page.keyboard.press('Shift+Tab');
    expect(await page.evaluate('document.activeElement && document.activeElement.textContent')).toBe('Edit');
    await page.keyboard.press('Enter');
    await page.keyboard.press('End');
    await page.keyboard.type(' (edited)');
    await page.keyboard.press('Enter');
    await expect.poll(() => messageTexts(page)).toEqual(['typed, never clicked (edited)']);
  });
});

async function shotSignIn(page: Page): Promise<void> {
  await page.goto(p.http);
  await page.getByLabel('User id').waitFor();
  await shot(page, 'sign-in', true);
}
