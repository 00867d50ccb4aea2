import type { z } from 'zod';
import { AppError, fromZodError } from '../../runtime/errors.js';
import type { HttpContext } from './router.js';

/** Parses and validates a JSON body against a contract schema. */
export function parseBody<T extends z.ZodType>(ctx: HttpContext, schema: T): z.infer<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(ctx.body));
  } catch {
    throw new AppError('invalid_json', 'the request body is not valid UTF-8 JSON');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw fromZodError('invalid_request', 'invalid request body', parsed.error);
  return parsed.data;
}

/** Parses the query string against a contract schema (unknown parameters are rejected). */
export function parseQuery<T extends z.ZodType>(ctx: HttpContext, schema: T): z.infer<T> {
  const parsed = schema.safeParse(Object.fromEntries(ctx.query));
  if (!parsed.success) throw fromZodError('invalid_request', 'invalid query', parsed.error);
  return parsed.data;
}
