import type { Browser, BrowserContext, Locator, Page, WebSocketRoute } from 'playwright-core';
import { expect } from 'vitest';

/** A browser profile of one user, whose WebSocket the test can cut as a network drop would. */
export interface BrowserUser {
  context: BrowserContext;
  page: Page;
  /** WebSocket connections this profile opened so far. */
  sockets(): number;
  goOffline(): Promise<void>;
  goOnline(): Promise<void>;
}

/**
 * A new context on `browser` (registered in `contexts` for closing). setOffline alone leaves open
 * WebSockets up, so going offline also closes them, and refuses new ones until back online.
 */
export async function browserUser(
  browser: Browser,
  contexts: BrowserContext[],
  options: { viewport?: { width: number; height: number }; onSocket?: (url: string) => void } = {},
): Promise<BrowserUser> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1024, height: 720 } });
  contexts.push(context);
  let offline = false;
  let sockets = 0;
  const open = new Set<WebSocketRoute>();
  await context.routeWebSocket(/\/v1\/ws/, (ws) => {
    if (offline) {
      // No network: the connection attempt fails at once.
      void ws.close({ code: 4000, reason: 'offline' });
      return;
    }
    options.onSocket?.(ws.url());
    ws.connectToServer();
    sockets++;
    open.add(ws);
    ws.onClose(() => open.delete(ws));
  });
  const page = await context.newPage();
  return {
    context,
    page,
    sockets: () => sockets,
    async goOffline() {
      offline = true;
      await context.setOffline(true);
      for (const ws of [...open]) await ws.close({ code: 4000, reason: 'network down' });
    },
    async goOnline() {
      offline = false;
      await context.setOffline(false);
    },
  };
}

/** Signs in through the form (dev tokens) and waits until the connection is online. */
export async function signIn(page: Page, baseUrl: string, userId: string): Promise<void> {
  await page.goto(baseUrl);
  await page.getByLabel('User id').fill(userId);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => page.getByRole('status').textContent(), { timeout: 10_000 }).toMatch(/^Online/);
}

export const messages = (page: Page): Locator => page.getByRole('list', { name: 'Messages' }).getByRole('listitem');
export const messageTexts = async (page: Page): Promise<string[]> => (await messages(page).locator('.text').allTextContents()).map((t) => t.trim());

export async function send(page: Page, text: string): Promise<void> {
  await page.getByRole('textbox', { name: 'Message' }).fill(text);
  await page.getByRole('button', { name: 'Send', exact: true }).click();
}
