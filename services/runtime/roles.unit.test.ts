import { describe, expect, it } from 'vitest';
import { parseStartArgs } from '../../ops/start-args.js';
import { loadConfig } from './config.js';
import { parseRoles, ROLES } from './roles.js';

describe('roles', () => {
  it.each([
    ['all', [...ROLES]],
    ['gateway', ['gateway']],
    ['writer', ['gateway']],
    ['gateway,writer', ['gateway']],
    ['workers', ['projector', 'membership', 'analytics', 'notifier']],
    ['read-model', ['projector']],
    [' Notifier , gateway ', ['gateway', 'notifier']],
    ['projector,projector', ['projector']],
    ['gateway,workers', [...ROLES]],
  ])('%j is %j', (text, roles) => {
    expect(parseRoles(text)).toEqual(roles);
  });

  it.each(['', ',', 'gatway', 'gateway,nope', 'writers'])('%j is refused with the names it knows', (text) => {
    expect(() => parseRoles(text)).toThrow(/role|roles/);
    expect(() => parseRoles(text)).toThrow(/known: gateway, projector, membership, analytics, notifier/);
  });

  it('PARLEY_ROLES is parsed with the configuration, `all` by default', () => {
    expect(loadConfig({}).roles).toEqual([...ROLES]);
    expect(loadConfig({ PARLEY_ROLES: 'writer,analytics' }).roles).toEqual(['gateway', 'analytics']);
    expect(() => loadConfig({ PARLEY_ROLES: 'scheduler' })).toThrow(/PARLEY_ROLES: unknown role "scheduler"/);
    expect(loadConfig({}).roleLeaseTtlMs).toBe(10_000);
    expect(loadConfig({ ROLE_LEASE_TTL_SECONDS: '2.5' }).roleLeaseTtlMs).toBe(2500);
    expect(() => loadConfig({ ROLE_LEASE_TTL_SECONDS: '0.5' })).toThrow(/ROLE_LEASE_TTL_SECONDS/);
  });

  it('start flags: --roles overrides, --no-workers is the gateway alone, anything else is refused', () => {
    expect(parseStartArgs([])).toEqual({ roles: undefined, exitWithParent: false });
    expect(parseStartArgs(['--roles', 'gateway,projector', '--exit-with-parent'])).toEqual({ roles: ['gateway', 'projector'], exitWithParent: true });
    expect(parseStartArgs(['--roles=workers'])).toEqual({ roles: ['projector', 'membership', 'analytics', 'notifier'], exitWithParent: false });
    expect(parseStartArgs(['--no-workers'])).toEqual({ roles: ['gateway'], exitWithParent: false });
    expect(() => parseStartArgs(['--roles', 'gateway', '--no-workers'])).toThrow(/together/);
    expect(() => parseStartArgs(['--role', 'gateway'])).toThrow();
    expect(() => parseStartArgs(['gateway'])).toThrow(/unexpected argument/);
    expect(() => parseStartArgs(['--roles', 'bogus'])).toThrow(/unknown role "bogus"/);
  });
});
