import { parseArgs } from 'node:util';
import { parseRoles, SINGLE_ACTIVE_ROLES, type Role } from '../services/runtime/roles.js';

export interface StartArgs {
  /** Undefined: PARLEY_ROLES decides. */
  roles: Role[] | undefined;
  exitWithParent: boolean;
}

/**
 * The flags of `npm start` and `parley start`:
 *   --roles gateway,projector   run these roles (overrides PARLEY_ROLES)
 *   --no-workers                the gateway only (same as --roles gateway)
 *   --exit-with-parent          stop when the parent process is gone
 * Throws an Error whose message is fit for the user.
 */
export function parseStartArgs(args: string[]): StartArgs {
  const { values, positionals } = parseArgs({
    args,
    options: { roles: { type: 'string' }, 'no-workers': { type: 'boolean' }, 'exit-with-parent': { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new Error(`unexpected argument ${positionals[0]}`);
  if (values.roles !== undefined && values['no-workers']) throw new Error('--roles and --no-workers together: give one');
  const roles = values.roles !== undefined ? parseRoles(values.roles) : values['no-workers'] ? (['gateway'] as Role[]) : undefined;
  return { roles, exitWithParent: values['exit-with-parent'] ?? false };
}

export const START_USAGE = `[--roles ROLE,...] [--no-workers] [--exit-with-parent]
      roles: gateway (alias writer), projector (alias read-model), ${SINGLE_ACTIVE_ROLES.filter((r) => r !== 'projector').join(', ')}; workers = all but gateway; all (default, or PARLEY_ROLES)`;
