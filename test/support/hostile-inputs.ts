import fc from 'fast-check';

/** Buffers print as a short summary in fast-check's counterexamples (a 300 KB body would bury the report). */
export function summarized(buf: Buffer): Buffer {
  Object.defineProperty(buf, fc.toStringMethod, {
    value: () => `<${buf.length} bytes: ${JSON.stringify(buf.subarray(0, 80).toString('latin1'))}${buf.length > 80 ? '...' : ''}>`,
  });
  return buf;
}

/**
 * Generators of hostile input for the gateway fuzz test: what a stranger can
 * put in a path, a query, a header, a body or a WebSocket frame. Each mixes
 * the classic troublemakers (malformed percent-encodings, bad UTF-8, lone
 * surrogates, NULs, huge and deeply nested values) with plausible values, so
 * requests also get past validation into the handlers.
 */

/** Percent-encodings that are malformed, decode to invalid UTF-8, to NUL, or to path tricks. */
export const NASTY_ESCAPES = [
  '%',
  '%Z',
  '%ZZ',
  '%%',
  '%2',
  '%E0%A4',
  '%C3%28',
  '%C0%AF',
  '%ED%A0%80',
  '%F4%90%80%80',
  '%FF%FE',
  '%00',
  '%0A',
  '%0D%0A',
  '..',
  '..%2F..%2Fetc',
  '%2e%2e%2f',
  '%252F',
  '%u002F',
  '\\',
  '%5C',
  '.',
  '~',
  '%20',
  '+',
];

/** Strings that are valid JS but hostile downstream (NUL, lone surrogates, bidi, emoji, control characters). */
export const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\uD800',
  '\uDFFF',
  'x\uD83D',
  '\u202Egnp.exe',
  '\uFEFF',
  '👩‍👩‍👧‍👦',
  '\r\n',
  '\t',
  'null',
  'undefined',
  '__proto__',
  'constructor',
  'toString',
  "'; drop table messages; --",
  '${7*7}',
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '9'.repeat(400),
  '-1',
  '1e308',
  '0x10',
  'NaN',
  'Infinity',
];

/** Characters Node's HTTP client will put in a request path as raw bytes (0x21-0xff, minus what ends a path). */
const pathChar = fc
  .integer({ min: 0x21, max: 0xff })
  .filter((c) => c !== 0x2f && c !== 0x3f && c !== 0x23)
  .map((c) => String.fromCharCode(c));

function anyText(maxLength: number): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'binary', maxLength }),
    fc.constantFrom(...NASTY_STRINGS),
    fc.array(fc.constantFrom(...NASTY_STRINGS, 'a', 'é', '😀'), { maxLength: 8 }).map((p) => p.join('')),
  );
}

/** One path segment: malformed escapes, raw high bytes, properly encoded anything, known-good values, very long. */
export function pathSegment(valid: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...valid) },
    {
      weight: 3,
      arbitrary: fc
        .array(fc.oneof(fc.constantFrom(...NASTY_ESCAPES), fc.string({ unit: pathChar, maxLength: 6 })), { minLength: 1, maxLength: 5 })
        .map((p) => p.join('')),
    },
    { weight: 2, arbitrary: anyText(40).map(safeEncode) },
    { weight: 1, arbitrary: fc.integer({ min: 200, max: 12_000 }).map((n) => 'a'.repeat(n)) },
    { weight: 1, arbitrary: fc.constant('') },
  );
}

/** encodeURIComponent for any JS string: lone surrogates become their (invalid) UTF-8 bytes, as a hostile client would send. */
export function safeEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff)
      out += `%${(0xe0 | (cp >> 12)).toString(16)}%${(0x80 | ((cp >> 6) & 0x3f)).toString(16)}%${(0x80 | (cp & 0x3f)).toString(16)}`;
    else out += encodeURIComponent(ch);
  }
  return out;
}

const QUERY_KEYS = [
  'limit',
  'before',
  'after',
  'cursor',
  'archived',
  'q',
  'conversationId',
  'userIds',
  'status',
  'name',
  'from',
  'to',
  'days',
  'token',
  'position',
  '__proto__',
  '',
];

export function queryString(validValues: string[]): fc.Arbitrary<string> {
  const value = fc.oneof(
    fc.constantFrom(...validValues, '1', '0', '-1', '50', '201', '1e3', '9007199254740993', '99999999999999999999', 'true'),
    anyText(30).map(safeEncode),
    fc.array(fc.constantFrom(...NASTY_ESCAPES), { minLength: 1, maxLength: 3 }).map((p) => p.join('')),
    fc.integer({ min: 100, max: 5000 }).map((n) => 'b'.repeat(n)),
  );
  const pair = fc.tuple(fc.oneof(fc.constantFrom(...QUERY_KEYS), fc.constantFrom(...NASTY_ESCAPES)), value).map(([k, v]) => `${k}=${v}`);
  return fc.oneof(
    fc.constant(''),
    fc.array(pair, { minLength: 1, maxLength: 6 }).map((p) => `?${p.join('&')}`),
    fc.constantFrom('?', '?&&&', '?=', '?a', '?%', '?a=1&a=2&a=3'),
  );
}

/** Header values Node's client can send: any byte but CR, LF, NUL and other controls (latin1 bytes 0x80-0xff included). */
const headerValueChar = fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((c) => String.fromCharCode(c));
export const headerValue = (maxLength: number) => fc.string({ unit: headerValueChar, maxLength });
const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/);

export function requestHeaders(validToken: string): fc.Arbitrary<Record<string, string>> {
  const authorization = fc.oneof(
    fc.constant(undefined),
    fc.constant(`Bearer ${validToken}`),
    fc.constant(`Bearer ${validToken.slice(0, -3)}abc`),
    fc.constant(`Bearer ${validToken.split('.').slice(0, 2).join('.')}.`),
    fc.constantFrom('Bearer', 'Bearer ', 'bearer x', 'Basic YWxpY2U6cGFzcw==', 'Bearer a.b.c', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.'),
    headerValue(200).map((v) => `Bearer ${v}`),
    fc.integer({ min: 1000, max: 20_000 }).map((n) => `Bearer ${'A'.repeat(n)}`),
  );
  const contentType = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(
      'application/json',
      'application/json; charset=latin1',
      'text/plain',
      'image/png',
      'image/svg+xml',
      'text/html',
      'multipart/form-data; boundary=x',
      '*/*',
      ';;;',
      'application/json\u00ff',
    ),
    headerValue(100),
  );
  const extra = fc.array(fc.tuple(headerName, headerValue(3000)), { maxLength: 20 });
  return fc.record({ authorization, contentType, requestId: fc.option(headerValue(300)), extra }).map(({ authorization, contentType, requestId, extra }) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of extra) if (!['host', 'content-length', 'transfer-encoding', 'connection', 'expect', 'upgrade'].includes(k)) headers[k] = v;
    if (authorization !== undefined) headers['authorization'] = authorization;
    if (contentType !== undefined) headers['content-type'] = contentType;
    if (requestId !== null) headers['x-request-id'] = requestId;
    return headers;
  });
}

/** Deeply nested JSON: arrays, objects, or both, up to `maxDepth` levels (valid JSON, or cut short). */
export const deeplyNested = (maxDepth: number) =>
  fc.tuple(fc.integer({ min: 100, max: maxDepth }), fc.constantFrom('array', 'object', 'mixed'), fc.boolean()).map(([depth, kind, truncated]) => {
    const open = kind === 'array' ? '[' : kind === 'object' ? '{"a":' : '[{"a":';
    const close = kind === 'array' ? ']' : kind === 'object' ? '}' : '}]';
    const reps = kind === 'mixed' ? Math.floor(depth / 2) : depth;
    return `${open.repeat(reps)}1${truncated ? '' : close.repeat(reps)}`;
  });

/** A JSON object shaped like one of `templates`, with fields dropped, added or replaced by hostile values. */
export function mutatedObject(templates: Record<string, unknown>[]): fc.Arbitrary<Record<string, unknown>> {
  const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
    anyText(50),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.oneof(anyText(20), fc.integer()), { maxLength: 5 }),
    fc.jsonValue({ maxDepth: 3 }),
    fc.integer({ min: 1000, max: 70_000 }).map((n) => 'x'.repeat(n)),
  );
  return fc
    .tuple(
      fc.constantFrom(...templates),
      fc.array(
        fc.tuple(
          fc.oneof(
            fc.constantFrom(
              't',
              'id',
              'conversationId',
              'text',
              'userId',
              'kind',
              'members',
              'seq',
              'messageId',
              'emoji',
              'attachments',
              'peer',
              'title',
              'url',
              'sql',
              'userIds',
            ),
            fc.string({ maxLength: 10 }),
          ),
          hostileValue,
          fc.boolean(),
        ),
        { maxLength: 4 },
      ),
    )
    .map(([template, edits]) => {
      const out: Record<string, unknown> = { ...template };
      for (const [key, value, remove] of edits) {
        if (remove) delete out[key];
        else out[key] = value;
      }
      return out;
    });
}

/** Raw bytes that are not valid UTF-8 (overlong forms, lone continuation bytes, surrogates, truncated sequences). */
export const invalidUtf8 = fc
  .tuple(
    fc.string({ maxLength: 30 }),
    fc.constantFrom([0xc0, 0xaf], [0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3], [0xff, 0xfe], [0xe2, 0x82]),
    fc.string({ maxLength: 30 }),
  )
  .map(([a, bad, b]) => summarized(Buffer.concat([Buffer.from(a), Buffer.from(bad), Buffer.from(b)])));
