import { afterAll, beforeAll } from 'vitest';
import { startTestPlatform, type TestPlatform, type TestPlatformOptions } from './platform.js';
import { TestClient } from './ws-client.js';

export interface PlatformFixture {
  /** The file's platform (available inside tests and hooks). */
  readonly p: TestPlatform;
  /** A real WebSocket client for `userId`, live (after `synced`); closed after the file. */
  connect(userId: string, position?: string | null): Promise<TestClient>;
}

/** Starts one platform for the test file and stops it, with every client opened through it, afterwards. */
export function usePlatform(options: TestPlatformOptions = {}): PlatformFixture {
  let platform: TestPlatform | undefined;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    platform = await startTestPlatform(options);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await platform?.stop();
  });
  return {
    get p() {
      if (!platform) throw new Error('the platform is not started yet');
      return platform;
    },
    async connect(userId, position) {
      const c = await TestClient.connect(this.p.ws, await this.p.token(userId), position);
      clients.push(c);
      return c;
    },
  };
}
