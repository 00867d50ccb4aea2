import { fork, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * Request/response over the Node IPC channel between the bench runner and
 * the processes it starts (servers, load generators). Each side is a small
 * RPC endpoint so a scenario reads as a sequence of awaited steps.
 */
interface Request {
  id: number;
  type: string;
  payload: unknown;
}
interface Response {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export type Handlers = Record<string, (payload: any) => unknown>;

/** Child side: answers the runner's requests with the given handlers. */
export function serve(handlers: Handlers): void {
  if (!process.send) throw new Error('not started with an IPC channel');
  process.on('message', (raw: unknown) => {
    const req = raw as Request;
    const handler = handlers[req.type];
    const reply = (r: Omit<Response, 'id'>) => process.send!({ id: req.id, ...r });
    if (!handler) return reply({ ok: false, error: `unknown request ${req.type}` });
    Promise.resolve()
      .then(() => handler(req.payload))
      .then(
        (result) => reply({ ok: true, result }),
        (err: unknown) => reply({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  // The runner going away (crash, Ctrl-C) must not leave servers or load behind. SIGKILL, not exit():
  // a process with embedded chDB can hang in native teardown.
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
}

export interface Child {
  name: string;
  pid: number;
  proc: ChildProcess;
  call<T = unknown>(type: string, payload?: unknown, timeoutMs?: number): Promise<T>;
  /** Asks the child to stop (`stop` request), then kills it if it lingers. */
  stop(): Promise<void>;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Prefix for the child's output lines on our stderr; silent when null. */
  label?: string | null;
}

/** Starts a TypeScript entry point (through tsx) with an IPC channel. */
export function spawnTs(file: string, name: string, options: SpawnOptions = {}): Child {
  const proc = fork(file, [], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'advanced',
  });
  const label = options.label === undefined ? name : options.label;
  for (const stream of [proc.stdout!, proc.stderr!]) {
    const rl = createInterface({ input: stream });
    rl.on('line', (line) => {
      if (label !== null) process.stderr.write(`[${label}] ${line}\n`);
    });
  }
  let next = 1;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout | undefined }>();
  let exited: Error | null = null;
  let stopping = false;
  proc.on('message', (raw: unknown) => {
    const res = raw as Response;
    const p = pending.get(res.id);
    if (!p) return;
    pending.delete(res.id);
    clearTimeout(p.timer);
    if (res.ok) p.resolve(res.result);
    else p.reject(new Error(`${name}: ${res.error}`));
  });
  const exitedPromise = new Promise<void>((resolve) =>
    proc.once('exit', (code, signal) => {
      exited = new Error(`${name} exited (code ${code}, signal ${signal})`);
      // A server or load process dying mid-run explains every failure that follows: say so.
      if (!stopping) process.stderr.write(`[${name}] exited unexpectedly (code ${code}, signal ${signal})\n`);
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(exited);
      }
      pending.clear();
      resolve();
    }),
  );
  const call = <T>(type: string, payload?: unknown, timeoutMs = 600_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (exited) return reject(exited);
      const id = next++;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              pending.delete(id);
              reject(new Error(`${name}: ${type} timed out after ${timeoutMs} ms`));
            }, timeoutMs)
          : undefined;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      proc.send({ id, type, payload } satisfies Request);
    });
  return {
    name,
    pid: proc.pid!,
    proc,
    call,
    async stop() {
      if (exited) return;
      stopping = true;
      await call('stop', undefined, 20_000).catch(() => undefined);
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      if (!exited) proc.kill('SIGTERM');
      await exitedPromise;
      clearTimeout(killer);
    },
  };
}
