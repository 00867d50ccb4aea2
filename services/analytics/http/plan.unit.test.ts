import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../runtime/config.js';
import { analyticsHttpPlanInput, planAnalyticsHttp, type AnalyticsHttpPlanInput } from './plan.js';
import { bindableParams, unescapeText } from './request.js';

const base: AnalyticsHttpPlanInput = {
  port: 8123,
  portExplicit: false,
  host: '127.0.0.1',
  user: 'analyst',
  password: undefined,
  clickhouseUrl: undefined,
  devTokens: true,
};
const PW = 'a-real-password-0123';

describe('whether the analytics HTTP endpoint runs', () => {
  const cases: [string, Partial<AnalyticsHttpPlanInput>, 'start' | 'off' | 'refuse', string?][] = [
    ['dev defaults on loopback: empty password', {}, 'start', ''],
    ['dev defaults on ::1', { host: '::1' }, 'start', ''],
    ['dev defaults on localhost', { host: 'localhost' }, 'start', ''],
    ['a password on loopback', { password: PW }, 'start', PW],
    ['a password on 0.0.0.0', { host: '0.0.0.0', password: PW }, 'start', PW],
    ['a password, production', { devTokens: false, password: PW }, 'start', PW],
    ['off by the operator', { port: null, password: PW }, 'off'],
    ['CLICKHOUSE_URL set', { clickhouseUrl: 'http://ch:8123', password: PW }, 'off'],
    ['dev defaults but exposed, default port', { host: '0.0.0.0' }, 'off'],
    ['dev defaults but exposed on a hostname, port set', { host: 'analytics.example', portExplicit: true }, 'refuse'],
    ['dev defaults, ambiguous 127.1, port set', { host: '127.1', portExplicit: true }, 'refuse'],
    ['production without a password, default port', { devTokens: false }, 'off'],
    ['production without a password, port set', { devTokens: false, portExplicit: true }, 'refuse'],
    ['production, exposed, no password, port set', { devTokens: false, host: '10.0.0.5', portExplicit: true }, 'refuse'],
  ];
  it('defaults to port 8123 on loopback, user analyst, with the dev default in development', () => {
    const input = analyticsHttpPlanInput(loadConfig({}));
    expect(input).toMatchObject({ port: 8123, portExplicit: false, host: '127.0.0.1', user: 'analyst', password: undefined, devTokens: true });
    expect(planAnalyticsHttp(input)).toMatchObject({ action: 'start', host: '127.0.0.1', port: 8123, password: '', devDefault: true });
    expect(analyticsHttpPlanInput(loadConfig({ ANALYTICS_HTTP_PORT: 'off' })).port).toBeNull();
  });

  it.each(cases)('%s', (_name, input, action, password) => {
    const plan = planAnalyticsHttp({ ...base, ...input });
    expect(plan.action).toBe(action);
    if (plan.action === 'start') expect(plan.password).toBe(password);
    // An empty password never serves anything but loopback with dev defaults.
    if (plan.action === 'start' && plan.password === '') expect(plan.devDefault).toBe(true);
  });
});

describe('query parameter values', () => {
  it('unescapes ClickHouse escaped text for string types only', () => {
    expect(unescapeText("it\\'s a\\ttab \\\\ \\n \\x41 \\q")).toBe("it's a\ttab \\ \n A q");
    expect(bindableParams('SELECT {s:String}, {n:UInt8}, {l:LowCardinality(Nullable(String))}', { s: 'a\\tb', n: '5', l: 'x\\ny' })).toEqual({
      s: 'a\tb',
      n: '5',
      l: 'x\ny',
    });
    expect(bindableParams('SELECT {v:Nullable(String)}', { v: '\\N' })).toEqual({ v: null });
    expect(() => bindableParams('SELECT {a:Array(String)}', { a: "['it\\'s']" })).toThrow(/backslash/);
  });
});
