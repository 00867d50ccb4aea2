import { readdirSync, readFileSync } from 'node:fs';
import { identify, isSameProcess, type ProcessIdentity } from '../../ops/embedded/process-record.js';

/** Parent pid of a live process (from /proc), or null. */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** The process and every live descendant of it, each with its start time (so a reused pid is never mistaken for it). */
export function processTree(root: number): ProcessIdentity[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const parent = parentOf(pid);
    if (parent !== null) children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  const out: ProcessIdentity[] = [];
  const walk = (pid: number) => {
    const id = identify(pid);
    if (!id) return;
    out.push(id);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

export function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
}

export const stillRunning = (ids: ProcessIdentity[]) => ids.filter(isSameProcess);

/** SIGKILL whatever of `ids` still runs (test cleanup: never a pid that now belongs to someone else). */
export function killAll(ids: ProcessIdentity[]): void {
  for (const id of stillRunning(ids)) {
    try {
      process.kill(id.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
