import { parseArgs, type ParseArgsConfig } from 'node:util';

/**
 * The operator CLI's command shape. A group (`streams`, `projectors`,
 * `parked`, ...) is a set of commands; main.ts only dispatches, so a new
 * group is one file and one line there.
 */
export interface CliIO {
  /** Command output (JSON or NDJSON) on stdout: pipe it to jq. */
  out(line: string): void;
  /** Progress and diagnostics on stderr, so stdout stays machine-readable. */
  err(line: string): void;
  env: Record<string, string | undefined>;
  /** Ends long-running commands (tail --follow) on Ctrl-C. */
  signal: AbortSignal;
  /** `--json`: every document on one line, so all of stdout is NDJSON (main.ts sets it). */
  json?: boolean;
}

export interface Command {
  /** Arguments after the command name, e.g. `<projector> [--to-seq N]`. */
  usage: string;
  summary: string;
  run(args: string[], io: CliIO): Promise<void>;
}

export interface CommandGroup {
  summary: string;
  commands: Record<string, Command>;
}

/** Exit statuses of every command (docs/operations.md, "Operator CLI"). */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A usage mistake: main.ts prints it with the command's usage and exits with status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.positionals.length !== positionals) throw new UsageError(`expected ${positionals} argument(s), got ${parsed.positionals.length}`);
  return parsed;
}

export function intOption(value: string | undefined, name: string, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer`);
  return n;
}

/** One JSON document: indented for people, on one line with `--json`. Keys come in the order the command builds them, so output is stable. */
export function printJson(io: CliIO, value: unknown): void {
  io.out(io.json ? JSON.stringify(value) : JSON.stringify(value, null, 2));
}
