import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  nproc: number;
  memoryBytes: number;
  cpuModel: string;
  kernel: string;
  node: string;
  openFilesLimit: string;
  loadAverage: number[];
}

export function machineInfo(): MachineInfo {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux: keep unknown
  }
  let openFiles = 'unknown';
  try {
    openFiles = /Max open files\s+(\S+)\s+(\S+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))!.slice(1, 3).join(' / ');
  } catch {
    // not Linux
  }
  return {
    nproc: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    cpuModel,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    openFilesLimit: openFiles,
    loadAverage: os.loadavg(),
  };
}

/** The commit measured, with a mark when the work tree differs from it. */
export function commitInfo(cwd: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} (+ uncommitted changes)` : head;
  } catch {
    return 'unknown';
  }
}
