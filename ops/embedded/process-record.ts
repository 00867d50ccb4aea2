import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EmbeddedLog } from './log.js';
import { StartRefused } from './refusal.js';

/**
 * Pid files for the servers the embedded stack starts. A parent killed with
 * SIGKILL cannot stop its nats-server or Postgres, which then hold their
 * ports and data dirs; the next start finds them through these records and
 * stops them. A pid alone is not enough (it can be reused by an unrelated
 * process), so each record also keeps the process's start time (field 22 of
 * /proc/<pid>/stat, fixed for the life of a process) and that of the process
 * that started it: a server is stopped only while both still match, i.e. it
 * is the very process we started and its starter is gone.
 */

export interface ProcessIdentity {
  pid: number;
  /** Clock ticks after boot at which the process started (/proc/<pid>/stat field 22). */
  startTime: string;
}

export interface ProcessRecord extends ProcessIdentity {
  /** What it is, for logs and the operator ("nats-server", "postgres"). */
  name: string;
  /** The process that started it (the platform, a test run): while it lives, the server is in use. */
  owner: ProcessIdentity;
}

/** Start time of a live process, or null when there is no such process (or no /proc to ask). */
export function processStartTime(pid: number): string | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Field 2 (the command name) is in parentheses and may hold spaces or ')': count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const startTime = fields[22 - 3];
  // A zombie (state Z) has exited: nothing left to stop, and it no longer holds ports or files.
  if (!startTime || fields[0] === 'Z') return null;
  return startTime;
}

export function isSameProcess(id: ProcessIdentity): boolean {
  return processStartTime(id.pid) === id.startTime;
}

export function identify(pid: number): ProcessIdentity | null {
  const startTime = processStartTime(pid);
  return startTime === null ? null : { pid, startTime };
}

/** Records a server this process has just started. Written atomically: a reader sees the old record or the new one. */
export async function writeRecord(file: string, name: string, pid: number): Promise<void> {
  const self = identify(process.pid);
  const id = identify(pid);
  // Without /proc there is no safe way to tell the server from a reused pid later: record nothing.
  if (!self || !id) return;
  const record: ProcessRecord = { name, ...id, owner: self };
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(record) + '\n', { mode: 0o600 });
  await fs.rename(tmp, file);
}

export async function readRecord(file: string): Promise<ProcessRecord | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const r = JSON.parse(text) as ProcessRecord;
    const valid = (id: unknown): id is ProcessIdentity =>
      typeof id === 'object' && id !== null && Number.isInteger((id as ProcessIdentity).pid) && typeof (id as ProcessIdentity).startTime === 'string';
    return valid(r) && valid(r.owner) && typeof r.name === 'string' ? r : null;
  } catch {
    return null; // a torn or foreign file: not a record we can act on
  }
}

export async function removeRecord(file: string): Promise<void> {
  await fs.rm(file, { force: true });
}

export interface ReclaimOptions {
  /** Signal for a clean stop (nats-server: SIGTERM; Postgres: SIGINT, its fast shutdown). */
  signal: NodeJS.Signals;
  /** How long the clean stop may take before SIGKILL. */
  graceMs: number;
  log: EmbeddedLog;
}

/**
 * Stops the server recorded in `file` if it was left behind by a starter that
 * is gone; refuses (StartRefused) when its starter still runs, since then it
 * is in use. Returns whether it stopped something.
 */
export async function reclaimOrphan(file: string, opts: ReclaimOptions): Promise<boolean> {
  const record = await readRecord(file);
  if (!record) return false;
  if (!isSameProcess(record)) {
    // Already gone (or its pid now belongs to someone else): nothing of ours runs.
    await removeRecord(file);
    return false;
  }
  // Its starter still runs (this process included: it holds a handle to stop it with): it is in use.
  if (isSameProcess(record.owner)) {
    throw new StartRefused(
      `${record.name} (pid ${record.pid}) for ${path.dirname(file)} is in use by a running process (pid ${record.owner.pid}); stop that one first or use another PARLEY_DATA_DIR`,
    );
  }
  opts.log.warn(`stopping the ${record.name} left behind by a process that is gone`, { pid: record.pid, ownerPid: record.owner.pid });
  const stopped = await stopProcess(record, opts.signal, opts.graceMs);
  if (!stopped) throw new StartRefused(`${record.name} (pid ${record.pid}) left behind by an earlier run did not stop, even on SIGKILL; stop it by hand`);
  await removeRecord(file);
  return true;
}

/** Signals the process, then SIGKILL after graceMs; never signals a pid whose start time no longer matches. */
export async function stopProcess(id: ProcessIdentity, signal: NodeJS.Signals, graceMs: number): Promise<boolean> {
  const send = (s: NodeJS.Signals) => {
    if (!isSameProcess(id)) return;
    try {
      process.kill(id.pid, s);
    } catch {
      // exited between the check and the signal
    }
  };
  const waitGone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (isSameProcess(id)) {
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
  };
  send(signal);
  if (await waitGone(graceMs)) return true;
  send('SIGKILL');
  return waitGone(5000);
}
