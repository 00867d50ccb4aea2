import { describe, expect, it } from 'vitest';
import { bearerFromProtocols } from '../ws/ws-auth.js';
import { normalizeOrigin, OriginPolicy } from './origin-policy.js';

const HOST = '127.0.0.1:8080';
const dev = new OriginPolicy({ allowedOrigins: null, devMode: true });
const prod = new OriginPolicy({ allowedOrigins: null, devMode: false });
const listed = new OriginPolicy({ allowedOrigins: ['https://chat.example.com', 'http://app.example.org:3000/'], devMode: true });
const anyOrigin = new OriginPolicy({ allowedOrigins: ['*'], devMode: false });
const emptyList = new OriginPolicy({ allowedOrigins: [], devMode: true });

// [policy name, policy, origin header, host header, allowed]
const cases: [string, OriginPolicy, string, string, boolean][] = [
  // Non-browser clients send no Origin: not an origin question.
  ['prod', prod, '', HOST, true],
  ['dev', dev, '', HOST, true],
  // The gateway's own page, either scheme (TLS may end at a proxy).
  ['prod', prod, 'http://127.0.0.1:8080', HOST, true],
  ['prod', prod, 'https://127.0.0.1:8080', HOST, true],
  ['prod', prod, 'http://chat.example.com', 'chat.example.com', true],
  ['prod', prod, 'https://chat.example.com', 'chat.example.com:443', true],
  ['prod', prod, 'HTTP://CHAT.EXAMPLE.COM', 'chat.example.com', true],
  // Production: nothing else.
  ['prod', prod, 'http://localhost:5173', HOST, false],
  ['prod', prod, 'http://127.0.0.1:8081', HOST, false],
  ['prod', prod, 'https://evil.example', HOST, false],
  ['prod', prod, 'null', HOST, false],
  ['prod', prod, 'http://127.0.0.1:8080', '', false],
  // Development default: any loopback origin, any port.
  ['dev', dev, 'http://localhost:5173', HOST, true],
  ['dev', dev, 'http://127.0.0.1:3000', HOST, true],
  ['dev', dev, 'https://localhost', HOST, true],
  ['dev', dev, 'http://[::1]:9000', HOST, true],
  ['dev', dev, 'http://localhost.evil.example', HOST, false],
  ['dev', dev, 'http://127.0.0.1.evil.example:8080', HOST, false],
  ['dev', dev, 'http://evil.example', HOST, false],
  ['dev', dev, 'null', HOST, false],
  ['dev', dev, 'file://', HOST, false],
  ['dev', dev, 'chrome-extension://abcdef', HOST, false],
  ['dev', dev, 'http://localhost:5173/path', HOST, false],
  ['dev', dev, 'http://user:pw@localhost:5173', HOST, false],
  ['dev', dev, 'javascript:alert(1)', HOST, false],
  // An explicit list replaces the development default.
  ['listed', listed, 'https://chat.example.com', HOST, true],
  ['listed', listed, 'http://app.example.org:3000', HOST, true],
  ['listed', listed, 'http://chat.example.com', HOST, false],
  ['listed', listed, 'https://chat.example.com:8443', HOST, false],
  ['listed', listed, 'https://sub.chat.example.com', HOST, false],
  ['listed', listed, 'http://localhost:5173', HOST, false],
  ['listed', listed, 'http://127.0.0.1:8080', HOST, true],
  ['empty list', emptyList, 'http://localhost:5173', HOST, false],
  ['empty list', emptyList, 'http://127.0.0.1:8080', HOST, true],
  // `*`: any http(s) origin, still never the opaque one.
  ['any', anyOrigin, 'https://anything.example', HOST, true],
  ['any', anyOrigin, 'null', HOST, false],
];

describe('origin policy (CORS and WebSocket Origin)', () => {
  it.each(cases)('%s: Origin %j to Host %j -> %s', (_name, policy, origin, host, allowed) => {
    expect(policy.allows(origin, host)).toBe(allowed);
  });

  it('needs CORS headers only across origins', () => {
    expect(dev.isCrossOrigin('http://127.0.0.1:8080', HOST)).toBe(false);
    expect(dev.isCrossOrigin('http://localhost:5173', HOST)).toBe(true);
  });

  it.each([
    ['http://a.example', 'http://a.example'],
    ['http://a.example:80', 'http://a.example'],
    ['https://a.example:443/', 'https://a.example'],
    ['https://A.example:8443', 'https://a.example:8443'],
    ['ftp://a.example', null],
    ['http://a.example/x', null],
    ['http://a.example?x', null],
    ['', null],
    ['x'.repeat(400), null],
  ])('normalises %j to %j', (origin, normalized) => {
    expect(normalizeOrigin(origin)).toBe(normalized);
  });
});

describe('token in Sec-WebSocket-Protocol', () => {
  it.each([
    ['parley.v1, parley.bearer.aaa.bbb.ccc', { token: 'aaa.bbb.ccc', accept: 'parley.v1' }],
    ['parley.bearer.aaa.bbb.ccc,parley.v1', { token: 'aaa.bbb.ccc', accept: 'parley.v1' }],
    ['parley.bearer.tok', { token: 'tok', accept: '' }],
    ['parley.v1', null],
    ['', null],
    ['chat, superchat', null],
  ])('%j -> %j', (header, expected) => {
    expect(bearerFromProtocols(header)).toEqual(expected);
  });
});
