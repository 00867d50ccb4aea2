import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The Parley processes of a chaos run, each a child in its own process group
 * (so kill -9 takes the whole group, and a terminal's Ctrl-C reaches only the
 * harness, which then stops them in order). Output goes to one log file per
 * process. A process the harness did not kill that exits is recorded (the
 * run reports it) and started again a second later.
 */
const RESTART_DELAY_MS = 1000;

export interface ProcessSpec {
  name: string;
  args: string[];
  env: Record<string, string>;
  /** Its HTTP port when it serves /healthz (gateways); others are ready once their log says so. */
  httpPort?: number;
  /** A log line that says it is up (for processes without HTTP). */
  readyLine?: string;
  logFile: string;
}

export interface Supervised {
  spec: ProcessSpec;
  pid(): number | null;
  running(): boolean;
  /** kill -9 of the whole process group; resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts it (again) and waits until it is ready. */
  start(timeoutMs?: number): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export class Supervisor {
  readonly processes: Supervised[] = [];
  /** Exits nobody asked for: name, code or signal, time. */
  readonly unexpectedExits: { name: string; how: string; at: number }[] = [];
  private closing = false;

  constructor() {
    // Last resort (the harness itself crashing): never leave a platform process behind.
    process.once('exit', () => {
      for (const p of this.processes) {
        const pid = p.pid();
        if (pid) killGroup(pid, 'SIGKILL');
      }
    });
  }

  add(spec: ProcessSpec): Supervised {
    let child: ChildProcess | null = null;
    let exited: Promise<void> = Promise.resolve();
    let expectExit = false;
    const out = fs.openSync(spec.logFile, 'a');
    const self = this;
    const running = () => child !== null && child.exitCode === null && child.signalCode === null;
    const p: Supervised = {
      spec,
      pid: () => (running() ? (child?.pid ?? null) : null),
      running,
      async kill() {
        if (!running()) return;
        expectExit = true;
        killGroup(child!.pid!, 'SIGKILL');
        await exited;
      },
      async stop(graceMs = 8000) {
        if (!running()) return;
        expectExit = true;
        killGroup(child!.pid!, 'SIGTERM');
        const timer = setTimeout(() => child?.pid && killGroup(child.pid, 'SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      },
      async start(timeoutMs = 60_000) {
        if (running()) throw new Error(`${spec.name} is already running`);
        expectExit = false;
        fs.writeSync(out, `\n--- start ${new Date().toISOString()} ---\n`);
        const c = spawn(process.execPath, spec.args, { env: { ...process.env, ...spec.env }, stdio: ['ignore', out, out], detached: true });
        child = c;
        exited = new Promise<void>((resolve) =>
          c.once('exit', (code, signal) => {
            resolve();
            if (expectExit || self.closing) return;
            self.unexpectedExits.push({ name: spec.name, how: signal ?? `exit ${code}`, at: Date.now() });
            // As a service manager would (systemd Restart=always): the run goes on and reports the exit.
            setTimeout(() => {
              if (!self.closing && !running()) p.start().catch(() => undefined);
            }, RESTART_DELAY_MS);
          }),
        );
        await waitReady(p, timeoutMs);
      },
    };
    this.processes.push(p);
    return p;
  }

  /** Stops every process (SIGTERM, SIGKILL after a grace period), all at once. */
  async stopAll(graceMs = 5000): Promise<void> {
    this.closing = true;
    await Promise.all(this.processes.map((p) => p.stop(graceMs)));
  }
}

async function waitReady(p: Supervised, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const { httpPort, readyLine, logFile, name } = p.spec;
  const startSize = fs.statSync(logFile).size;
  for (;;) {
    if (!p.running()) throw new Error(`${name} exited while starting (see ${logFile})`);
    if (httpPort) {
      const ok = await fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return;
    } else if (readyLine) {
      const text = readFrom(logFile, startSize);
      if (text.includes(readyLine)) return;
    } else return;
    if (Date.now() > deadline) throw new Error(`${name} not ready within ${timeoutMs} ms (see ${logFile})`);
    await sleep(200);
  }
}

function readFrom(file: string, offset: number): string {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    fs.readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
