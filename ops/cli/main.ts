import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAppError } from '../../services/runtime/errors.js';
import { analytics } from './analytics.js';
import { EXIT, UsageError, type CliIO, type CommandGroup } from './command.js';
import { completionScript, SHELLS, type Shell } from './completion.js';
import { log } from './log.js';
import { parseStartArgs, START_USAGE } from '../start-args.js';
import { parked } from './parked.js';
import { projectors } from './projectors.js';
import { streams } from './streams.js';

/**
 * `npm run parley -- <group> <command> [args]`: the operator CLI. This file
 * only dispatches; each group lives in its own file. Output is JSON or
 * NDJSON on stdout (`--json`: NDJSON only), progress and logs on stderr.
 * Exit status: 0 ok, 1 the command failed, 2 usage.
 */
const groups: Record<string, CommandGroup> = { streams, projectors, parked, log, analytics };

function usage(io: CliIO, only?: string): void {
  io.err('usage: parley <group> <command> [args]   (npm run parley -- ...)\n');
  for (const [name, group] of Object.entries(groups)) {
    if (only && only !== name) continue;
    io.err(`${name}: ${group.summary}`);
    for (const [cmd, c] of Object.entries(group.commands)) io.err(`  parley ${name} ${cmd} ${c.usage}\n      ${c.summary}`);
  }
  if (!only) {
    io.err(`start: run Parley in this process until Ctrl-C\n  parley start ${START_USAGE}`);
    io.err(`completion: shell completion generated from this table\n  parley completion <${SHELLS.join('|')}>\n      eval "$(parley completion bash)"`);
  }
  io.err('\nOutput: JSON on stdout (lists as NDJSON, one object a line); --json puts every document on one line.');
  io.err(`Exit status: ${EXIT.ok} ok, ${EXIT.failed} the command failed (error on stderr), ${EXIT.usage} usage mistake.`);
  io.err('Connects like the platform: NATS_URL / DATABASE_URL, or the embedded servers (see README "Operations").');
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  // A global flag: accepted anywhere, taken out before a command parses its own options.
  if (argv.includes('--json')) {
    io = { ...io, json: true };
    argv = argv.filter((a) => a !== '--json');
  }
  const [groupName, commandName, ...args] = argv;
  if (groupName === 'completion') {
    if (!commandName || !(SHELLS as readonly string[]).includes(commandName) || args.length > 0) {
      io.err(`usage: parley completion <${SHELLS.join('|')}>`);
      return EXIT.usage;
    }
    io.out(completionScript(commandName as Shell, groups, START_USAGE));
    return EXIT.ok;
  }
  const group = groupName ? groups[groupName] : undefined;
  if (!group || groupName === 'help' || args.includes('--help')) {
    usage(io, group ? groupName : undefined);
    return groupName && groupName !== 'help' && groupName !== '--help' && !group ? EXIT.usage : EXIT.ok;
  }
  const command = commandName ? group.commands[commandName] : undefined;
  if (!command) {
    usage(io, groupName);
    return EXIT.usage;
  }
  try {
    await command.run(args, io);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\nusage: parley ${groupName} ${commandName} ${command.usage}`);
      return EXIT.usage;
    }
    io.err(`error: ${isAppError(err) ? `[${err.code}] ` : ''}${(err as Error)?.message ?? String(err)}`);
    return EXIT.failed;
  }
}

/**
 * `parley start [--roles ...]`: this process becomes a Parley process (ops/run.ts) and runs until a signal.
 * Loaded only for `start`, by a specifier the CLI's bundle leaves alone (ops/build/build.mjs), so the other
 * commands never load the platform's code.
 */
async function start(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseStartArgs(args);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: parley start ${START_USAGE}\n`);
    process.exit(2);
  }
  const runModule = new URL('../run.js', import.meta.url).href;
  const { runProcess } = (await import(runModule)) as typeof import('../run.js');
  await runProcess({ roles: parsed.roles, exitWithParent: parsed.exitWithParent });
}

// Run only as the entry point, so tests can import main().
if (process.argv[2] === 'start' && process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  await start(process.argv.slice(3));
} else if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const io: CliIO = {
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    env: process.env,
    signal: controller.signal,
  };
  process.exitCode = await main(process.argv.slice(2), io);
}
