import { runProcess } from './run.js';
import { parseStartArgs, START_USAGE, type StartArgs } from './start-args.js';

/**
 * `npm start`: the whole platform on embedded defaults (or the servers named
 * by NATS_URL / DATABASE_URL / CLICKHOUSE_URL), stopped cleanly on SIGINT or
 * SIGTERM with all data kept under PARLEY_DATA_DIR (default ./.parley).
 *
 * `npm start` runs this file as npm's direct child (`exec node --import tsx`:
 * no shell or tsx process in between that would swallow npm's forwarded
 * signal), and with --exit-with-parent it also stops when npm is gone
 * (killed with SIGKILL, say). Everything else is ops/run.ts.
 *
 * `--roles gateway,projector` (or PARLEY_ROLES) runs only those roles
 * (services/runtime/roles.ts); `--no-workers`: the gateway only (a second
 * gateway of a deployment whose projectors and notifier run elsewhere;
 * `npm run cluster`, ops/cluster.ts).
 */
let args: StartArgs;
try {
  args = parseStartArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\nusage: npm start -- ${START_USAGE}\n`);
  process.exit(2);
}
await runProcess({ roles: args.roles, exitWithParent: args.exitWithParent });
