import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { decideExposure, enforceExposure, ExposureRefused, isLoopbackHost, type ExposureInput } from './exposure.js';

describe('isLoopbackHost', () => {
  const loopback = [
    '127.0.0.1',
    '127.0.0.0',
    '127.255.255.255',
    '127.1.2.3',
    'localhost',
    'LOCALHOST',
    'LocalHost',
    '::1',
    '[::1]',
    '0:0:0:0:0:0:0:1',
    '0000:0000:0000:0000:0000:0000:0000:0001',
    '0::1',
    '::ffff:127.0.0.1',
    '::FFFF:127.9.9.9',
    '::ffff:7f00:1',
    '[::ffff:127.0.0.1]',
  ];
  const exposed = [
    '0.0.0.0',
    '::',
    '[::]',
    '0:0:0:0:0:0:0:0',
    '',
    ' ',
    '127.0.0.1 ',
    ' 127.0.0.1',
    '127.1', // inet_aton would read 127.0.0.1, but only canonical spellings are trusted
    '127.0.1',
    '2130706433',
    '0x7f000001',
    '0x7f.1',
    '017700000001',
    '0177.0.0.1',
    '127.000.000.001',
    '128.0.0.1',
    '126.255.255.255',
    '10.0.0.1',
    '172.16.0.1',
    '192.168.1.10',
    '169.254.169.254',
    '1.2.3.4',
    '255.255.255.255',
    '::ffff:0.0.0.0',
    '::ffff:10.0.0.1',
    '::127.0.0.1', // IPv4-compatible (deprecated), not loopback
    '::2',
    'fe80::1',
    'fe80::1%eth0',
    'fd00::1',
    '2001:db8::1',
    'localhost.', // a name with a trailing dot goes to DNS
    'localhost.localdomain',
    'localhost6',
    'loopback',
    '127.0.0.1.nip.io',
    'example.com',
    'my-host',
    '[127.0.0.1]',
    '[::1',
    '::1]',
  ];
  it.each(loopback)('%j is loopback', (host) => expect(isLoopbackHost(host)).toBe(true));
  it.each(exposed)('%j is exposed', (host) => expect(isLoopbackHost(host)).toBe(false));
});

describe('decideExposure', () => {
  const base: ExposureInput = { host: '0.0.0.0', devTokens: true, hasProductionKey: false, hasAnalyticsAdminToken: false, allowInsecureBind: false };
  const table: Array<[string, Partial<ExposureInput>, 'ok' | 'warn' | 'refuse', RegExp[]]> = [
    ['development defaults on loopback', { host: '127.0.0.1' }, 'ok', []],
    ['development defaults on ::1', { host: '::1' }, 'ok', []],
    ['development defaults on localhost', { host: 'localhost' }, 'ok', []],
    [
      'development defaults on 0.0.0.0',
      {},
      'refuse',
      [/generated development JWT secret/, /dev token endpoint/, /analytics open/, /AUTH_JWT_SECRET/, /PARLEY_ALLOW_INSECURE_BIND=true/],
    ],
    ['development defaults on ::', { host: '::' }, 'refuse', [/HOST="::"/]],
    ['development defaults on a LAN address', { host: '192.168.1.5' }, 'refuse', [/dev token endpoint/]],
    ['development defaults on a hostname', { host: 'parley.example.com' }, 'refuse', [/not a loopback address/]],
    ['production key, dev tokens off, no analytics token', { hasProductionKey: true, devTokens: false }, 'ok', []],
    [
      'production key, dev tokens forced on',
      { hasProductionKey: true, devTokens: true, hasAnalyticsAdminToken: true },
      'refuse',
      [/dev token endpoint/, /unset AUTH_DEV_TOKENS/],
    ],
    [
      'production key, dev tokens forced on, analytics open',
      { hasProductionKey: true, devTokens: true },
      'refuse',
      [/analytics open without ANALYTICS_ADMIN_TOKEN/, /unset AUTH_DEV_TOKENS/],
    ],
    ['no key, dev tokens off (generated secret only)', { devTokens: false }, 'refuse', [/generated development JWT secret/]],
    ['development defaults exposed with the override', { allowInsecureBind: true }, 'warn', [/started anyway because PARLEY_ALLOW_INSECURE_BIND=true/]],
    ['override on loopback changes nothing', { host: '127.0.0.1', allowInsecureBind: true }, 'ok', []],
    ['production setup exposed with the override', { hasProductionKey: true, devTokens: false, allowInsecureBind: true }, 'ok', []],
  ];
  it.each(table)('%s', (_name, patch, action, patterns) => {
    const decision = decideExposure({ ...base, ...patch });
    expect(decision.action).toBe(action);
    if (decision.action === 'ok') return;
    expect(decision.message).not.toContain('\n'); // one log line
    for (const p of patterns) expect(decision.message).toMatch(p);
  });
  it('does not suggest unsetting AUTH_DEV_TOKENS when a key is the fix', () => {
    const decision = decideExposure(base);
    expect(decision.action).toBe('refuse');
    if (decision.action === 'refuse') expect(decision.message).not.toMatch(/unset AUTH_DEV_TOKENS/);
  });
});

describe('enforceExposure on a loaded config', () => {
  it('refuses HOST=0.0.0.0 with the defaults and accepts it with PARLEY_ALLOW_INSECURE_BIND=true', () => {
    expect(() => enforceExposure(loadConfig({ HOST: '0.0.0.0' }))).toThrow(ExposureRefused);
    expect(enforceExposure(loadConfig({ HOST: '0.0.0.0', PARLEY_ALLOW_INSECURE_BIND: 'true' })).action).toBe('warn');
    expect(enforceExposure(loadConfig({})).action).toBe('ok');
    expect(enforceExposure(loadConfig({ HOST: '0.0.0.0', AUTH_JWT_SECRET: 'x'.repeat(32) })).action).toBe('ok');
    expect(() => enforceExposure(loadConfig({ HOST: '0.0.0.0', AUTH_JWT_SECRET: 'x'.repeat(32), AUTH_DEV_TOKENS: 'true' }))).toThrow(/unset AUTH_DEV_TOKENS/);
  });
});
