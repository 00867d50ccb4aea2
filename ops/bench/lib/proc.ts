import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * CPU and memory of another process from the kernel's own accounting
 * (/proc/<pid>/stat and /status). Read from outside, so a saturated server
 * is measured without asking its event loop anything.
 */
let ticksPerSecond: number | null = null;
function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

export interface ProcSample {
  /** User + system CPU time of all the process's threads, in microseconds. */
  cpuUs: number;
  /** Resident set size in bytes. */
  rss: number;
  /** Open file descriptors (sockets included). */
  fds: number;
  at: number;
}

export function sampleProcess(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields are counted after its closing parenthesis.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  let fds = 0;
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    // not ours to list: leave 0
  }
  return { cpuUs: (ticks * 1_000_000) / clockTicks(), rss: rssKb * 1024, fds, at: performance.now() };
}

/**
 * CPU of a process and all its children, µs, counting children that exited
 * too: the kernel adds a reaped child's CPU to its parent's cutime/cstime,
 * so a short-lived child (a Postgres backend) is neither lost nor counted
 * twice between two readings. Children that exit while being listed are
 * skipped (their CPU shows up in the parent's next reading).
 */
export function sampleTreeCpuUs(rootPid: number): number {
  const fields = (pid: number) => {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  };
  const root = fields(rootPid);
  let ticks = Number(root[11]) + Number(root[12]) + Number(root[13]) + Number(root[14]);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const f = fields(Number(entry));
      if (Number(f[1]) === rootPid) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited meanwhile
    }
  }
  return (ticks * 1_000_000) / clockTicks();
}

/** Sum over several processes (e.g. all gateways of a deployment). */
export function sampleProcesses(pids: number[]): ProcSample {
  const all = pids.map(sampleProcess);
  return { cpuUs: sum(all.map((s) => s.cpuUs)), rss: sum(all.map((s) => s.rss)), fds: sum(all.map((s) => s.fds)), at: performance.now() };
}

/** The soft open-files limit of a process. */
export function openFilesLimit(pid: number | 'self' = 'self'): number {
  const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
  const m = /Max open files\s+(\d+|unlimited)/.exec(limits);
  return !m || m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
