import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';
import { launchChromium } from './browser.js';
import { browserUser, messageTexts, send, signIn as signInAt } from './page.js';

/**
 * The third continuity answer in a real browser: more was missed than one resume replays
 * (a platform with a small MAX_REPLAY_EVENTS), so the server answers `resync_needed` and the
 * page must refetch over HTTP rather than only say so.
 */

const ARTIFACTS = path.resolve('.parley/test-artifacts/web');
/** Below the missed events below, and the smallest the configuration allows. */
const MAX_REPLAY = 10;
/** More than one history page (50), so a refetch that kept the old messages would leave a hole. */
const AWAY = 60;

let p: TestPlatform;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  [p, browser] = await Promise.all([
    startTestPlatform({
      withWorkers: true,
      env: { MAX_REPLAY_EVENTS: String(MAX_REPLAY), RATE_SENDS_PER_SECOND: '1000', RATE_FRAMES_PER_SECOND: '1000', RATE_HTTP_PER_SECOND: '1000' },
    }),
    launchChromium(),
  ]);
});

afterAll(async () => {
  await Promise.allSettled(contexts.map((c) => c.close()));
  await browser?.close();
  await p?.stop();
});

const user = () => browserUser(browser, contexts);
const signIn = (page: Page, userId: string) => signInAt(page, p.http, userId);
const conversationButton = (page: Page, name: RegExp): Locator => page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name });

/** Commands over HTTP, as another device of the writer would send them (fast, and the browser under test is away). */
async function http<T>(token: string, route: string, body: unknown): Promise<T> {
  const res = await fetch(`${p.http}${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBeLessThan(300);
  return (await res.json()) as T;
}

describe('the web client after a resync', () => {
  it('too far behind: the status says resynced and the page refetches the open conversation and the list', async () => {
    const alice = await user();
    const bob = await user();
    await Promise.all([signIn(alice.page, 'rs-alice'), signIn(bob.page, 'rs-bob')]);
    await alice.page.getByRole('button', { name: 'New conversation' }).click();
    await alice.page.getByRole('textbox', { name: 'Members', exact: true }).fill('rs-bob, rs-carl');
    await alice.page.getByLabel('Title').fill('Resync club');
    await alice.page.getByRole('button', { name: 'Create' }).click();
    await send(alice.page, 'before 1');
    await send(alice.page, 'before 2');
    await conversationButton(bob.page, /Resync club/).click();
    await expect.poll(() => messageTexts(bob.page), { timeout: 10_000 }).toEqual(['before 1', 'before 2']);

    // Bob's network drops; far more happens than one resume replays, including a conversation he is added to.
    await bob.goOffline();
    await expect.poll(() => bob.page.getByRole('status').textContent()).toMatch(/^(Offline|Reconnecting)/);
    const token = await p.token('rs-alice');
    const group = (await alice.page.locator('[data-conversation][aria-current="true"]').getAttribute('data-conversation'))!;
    const away = Array.from({ length: AWAY }, (_, i) => `away ${String(i + 1).padStart(2, '0')}`);
    for (const [i, text] of away.entries()) await http(token, '/v1/commands', { t: 'send', conversationId: group, clientMsgId: `rs-away-${i}`, text });
    const other = await http<{ conversationId: string }>(token, '/v1/conversations', { kind: 'group', title: 'Made while away', members: ['rs-bob'] });
    await http(token, '/v1/commands', { t: 'send', conversationId: other.conversationId, clientMsgId: 'rs-other-0', text: 'news from the other room' });

    // Back: the resume cannot vouch for continuity, and says so.
    await bob.goOnline();
    await expect.poll(() => bob.page.getByRole('status').textContent(), { timeout: 15_000 }).toBe('Online: resynced (too far behind)');
    // The open conversation was refetched over HTTP: its newest page, once each, in order, with no hole before it.
    await expect.poll(() => messageTexts(bob.page), { timeout: 10_000 }).toEqual(away.slice(AWAY - 50));
    // The list is current: the room made while away, and the group's last message.
    // (allTextContents does not wait for the button to appear, so a stale list fails within the poll's timeout.)
    await expect
      .poll(() => conversationButton(bob.page, /Made while away/).allTextContents(), { timeout: 10_000 })
      .toEqual([expect.stringContaining('news from the other room')]);
    expect(await conversationButton(bob.page, /Resync club/).allTextContents()).toEqual([expect.stringContaining(`rs-alice: ${away.at(-1)}`)]);
    await bob.page.screenshot({ path: path.join(ARTIFACTS, 'resynced.png') });
    // What the refetch showed on the open conversation counts as read.
    await expect
      .poll(
        () =>
          conversationButton(bob.page, /Resync club/)
            .getByLabel(/unread/)
            .count(),
        { timeout: 10_000 },
      )
      .toBe(0);
    const sockets = bob.sockets();

    // Live delivery carries on after the resync, and older history loads on scroll, still once each, in order.
    await send(alice.page, 'after the resync');
    const all = ['before 1', 'before 2', ...away, 'after the resync'];
    await expect.poll(() => messageTexts(bob.page), { timeout: 10_000 }).toEqual(all.slice(all.length - 51));
    const list = bob.page.getByRole('list', { name: 'Messages' });
    await expect
      .poll(
        async () => {
          await list.evaluate((el) => (el.scrollTop = 0));
          return messageTexts(bob.page);
        },
        { timeout: 10_000 },
      )
      .toEqual(all);
    await new Promise((r) => setTimeout(r, 500));
    expect(await messageTexts(bob.page)).toEqual(all);
    // The live message came over the same connection: no gap detected, no rewind into a second resync.
    expect(bob.sockets()).toBe(sockets);
    expect(await bob.page.getByRole('status').textContent()).toBe('Online: resynced (too far behind)');
  });
});
