import type { TokenResponse } from '../../contracts/index.js';

/** Renew this long before a dev token expires, so a connection never starts with a token about to lapse. */
export const RENEW_BEFORE_MS = 60_000;

/**
 * The token the terminal signs in with: the one given with --token, or a dev
 * token (POST /v1/dev/token) kept until a minute before it expires. The SDK
 * and every HTTP request ask for it, so it must not mint a new one each time.
 * `expiresAt` is in milliseconds since the epoch, like every time in the protocol.
 */
export class TerminalToken {
  private issued: TokenResponse | null = null;
  private minting: Promise<TokenResponse> | null = null;

  constructor(
    private readonly mint: () => Promise<TokenResponse>,
    private readonly given: string | null = null,
    private readonly now: () => number = Date.now,
  ) {}

  async get(): Promise<string> {
    if (this.given) return this.given;
    if (this.issued && this.issued.expiresAt - this.now() > RENEW_BEFORE_MS) return this.issued.token;
    // Concurrent askers (the SDK's connect and an HTTP request) share one mint.
    this.minting ??= this.mint().finally(() => (this.minting = null));
    this.issued = await this.minting;
    return this.issued.token;
  }
}
