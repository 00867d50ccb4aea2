import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The status this receiver answered with. */
  status: number;
  at: number;
}

/**
 * A local HTTP server standing in for a webhook receiver or a push service:
 * records every request and answers with the status `respond` picks (200 by
 * default), so tests can make it fail on purpose.
 */
export class HttpReceiver {
  readonly requests: ReceivedRequest[] = [];
  respond: (req: Omit<ReceivedRequest, 'status'>, index: number) => number = () => 200;

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<HttpReceiver> {
    const server = http.createServer();
    const receiver = new HttpReceiver(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const partial = { path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks), at: Date.now() };
        const status = receiver.respond(partial, receiver.requests.length);
        receiver.requests.push({ ...partial, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  on(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
