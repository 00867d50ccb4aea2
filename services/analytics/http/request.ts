import { timingSafeEqual, createHash } from 'node:crypto';
import type http from 'node:http';
import zlib from 'node:zlib';
import { CH, failure } from './clickhouse-errors.js';

/**
 * Reading one request of ClickHouse's HTTP interface: the query (URL
 * `query` parameter, then the body), credentials, and the parameters that
 * matter here. Everything else a client sends (settings such as
 * `wait_end_of_query`, `enable_http_compression`, `session_id`,
 * `output_format_*`) is ignored: no URL parameter reaches the engine as a
 * setting, so none can loosen the read-only session.
 */

/** ClickHouse's own default `max_query_size` is 256 KiB; a body larger than this is not a query anyone types. */
export const MAX_QUERY_BYTES = 1 << 20;

export interface Credentials {
  user: string;
  password: string;
}

/** X-ClickHouse-User/Key, HTTP basic auth, or `user`/`password` URL parameters (ClickHouse's three ways); none: the user `default`. */
export function credentialsOf(req: http.IncomingMessage, url: URL): Credentials {
  const headerUser = req.headers['x-clickhouse-user'];
  const headerKey = req.headers['x-clickhouse-key'];
  if (typeof headerUser === 'string' || typeof headerKey === 'string') {
    return { user: typeof headerUser === 'string' ? headerUser : 'default', password: typeof headerKey === 'string' ? headerKey : '' };
  }
  const auth = req.headers.authorization;
  if (auth && /^basic /i.test(auth)) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? { user: decoded, password: '' } : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return { user: url.searchParams.get('user') ?? 'default', password: url.searchParams.get('password') ?? '' };
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time on the password (hashed first, so lengths do not leak either). */
export function credentialsMatch(given: Credentials, expected: Credentials): boolean {
  const userOk = timingSafeEqual(digest(given.user), digest(expected.user));
  const passwordOk = timingSafeEqual(digest(given.password), digest(expected.password));
  return userOk && passwordOk;
}

/** The body, decompressed when the client compressed it, at most MAX_QUERY_BYTES either way. */
export async function readBody(req: http.IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_QUERY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_QUERY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks);
  const encoding = String(req.headers['content-encoding'] ?? '')
    .toLowerCase()
    .trim();
  if (encoding === '' || encoding === 'identity') return raw.toString('utf8');
  try {
    const opts = { maxOutputLength: MAX_QUERY_BYTES };
    if (encoding === 'gzip') return zlib.gunzipSync(raw, opts).toString('utf8');
    if (encoding === 'deflate') return zlib.inflateSync(raw, opts).toString('utf8');
    if (encoding === 'br') return zlib.brotliDecompressSync(raw, opts).toString('utf8');
  } catch {
    throw failure(CH.BAD_ARGUMENTS, `the request body is not valid ${encoding} or decompresses to more than ${MAX_QUERY_BYTES} bytes`);
  }
  throw failure(CH.BAD_ARGUMENTS, `Content-Encoding ${encoding} is not supported (gzip, deflate, br)`);
}

function tooLarge() {
  return failure(CH.SYNTAX_ERROR, `Max query size exceeded: the query is larger than ${MAX_QUERY_BYTES} bytes`);
}

/** ClickHouse joins the `query` parameter and the body with a newline. */
export function queryText(url: URL, body: string): string {
  const fromUrl = url.searchParams.get('query') ?? '';
  if (fromUrl === '') return body;
  return body === '' ? fromUrl : `${fromUrl}\n${body}`;
}

/** `param_<name>` URL parameters: the values of `{name:Type}` in the query, as sent (ClickHouse's escaped text form). */
export function queryParams(url: URL): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, value] of url.searchParams) {
    if (key.startsWith('param_') && key.length > 'param_'.length) params[key.slice('param_'.length)] = value;
  }
  return params;
}

/** `{name:Type}` in the text (a match inside a string literal only changes how a value is unescaped, never what is checked). */
const PLACEHOLDER = /\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}/g;
const STRING_TYPE = /^(?:Nullable\(|LowCardinality\()*(?:String|FixedString\(\d+\))\)*$/;
const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', '0': '\0', a: '\x07', v: '\v', e: '\x1b' };

/** ClickHouse's escaped text form back to the string: `\t`, `\n`, `\xHH`, and `\c` for any other c. */
export function unescapeText(value: string): string {
  return value.replace(/\\(x[0-9A-Fa-f]{2}|[\s\S])/g, (_m, c: string) => (c.length === 3 ? String.fromCharCode(parseInt(c.slice(1), 16)) : (ESCAPES[c] ?? c)));
}

/**
 * The values as chDB's binder takes them. A server parses a `param_` value
 * in ClickHouse's escaped text form; chDB's binder escapes the strings it is
 * given itself, so a string-typed value is unescaped first (and `\N` is
 * NULL). Values of other types pass as they are, unless they hold a
 * backslash, whose meaning would change on the way: refused, rather than
 * bound to something else than the client meant.
 */
export function bindableParams(sql: string, raw: Record<string, string>): Record<string, string | null> {
  const types = new Map<string, string>();
  for (const m of sql.matchAll(PLACEHOLDER)) types.set(m[1]!, m[2]!.replace(/\s+/g, ''));
  const out: Record<string, string | null> = {};
  for (const [name, value] of Object.entries(raw)) {
    const type = types.get(name);
    if (value === '\\N' && type?.includes('Nullable(')) out[name] = null;
    else if (type !== undefined && STRING_TYPE.test(type)) out[name] = unescapeText(value);
    else if (value.includes('\\'))
      throw failure(
        CH.BAD_QUERY_PARAMETER,
        `query parameter ${name}: a value of type ${type ?? 'unknown'} with a backslash is not supported here; pass it as a String parameter and convert it in the query`,
      );
    else out[name] = value;
  }
  return out;
}

/** A non-negative integer setting, or undefined when absent; anything else is refused like ClickHouse does. */
export function integerSetting(url: URL, name: string): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d{1,15}$/.test(v)) throw failure(CH.BAD_ARGUMENTS, `setting ${name}: cannot parse ${JSON.stringify(v.slice(0, 40))} as an unsigned integer`);
  return Number(v);
}
