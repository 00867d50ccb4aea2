import { CLIENT_FRAME_SCHEMAS, type ClientFrame } from '../../../contracts/index.js';
import { AppError, fromZodError } from '../../runtime/errors.js';

export interface ParsedFrame {
  frame: ClientFrame | null;
  /** The request id, when one could be read even from an invalid frame, so the error can be correlated. */
  requestId: string | undefined;
  error: AppError | null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readRequestId(raw: unknown): string | undefined {
  if (raw && typeof raw === 'object' && 'id' in raw) {
    const id = (raw as { id: unknown }).id;
    if (typeof id === 'string' && id.length > 0 && id.length <= 64) return id;
  }
  return undefined;
}

/**
 * Turns one WebSocket message into a client frame or a typed error, in the
 * order a client author would debug it: size, encoding, JSON, type, schema.
 * Never throws.
 */
export function parseClientFrame(data: ArrayBuffer, isBinary: boolean, maxFrameBytes: number): ParsedFrame {
  const fail = (error: AppError, requestId?: string): ParsedFrame => ({ frame: null, requestId, error });
  if (isBinary) return fail(new AppError('binary_not_supported', 'send JSON in text frames'));
  if (data.byteLength > maxFrameBytes) {
    return fail(new AppError('frame_too_large', `frames are limited to ${maxFrameBytes} bytes, got ${data.byteLength}`));
  }
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    return fail(new AppError('invalid_frame', 'the frame is not valid UTF-8'));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fail(new AppError('invalid_json', 'the frame is not valid JSON'));
  }
  const requestId = readRequestId(raw);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    return fail(new AppError('invalid_frame', 'a frame is a JSON object'), requestId);
  }
  const type = (raw as { t?: unknown }).t;
  if (typeof type !== 'string') return fail(new AppError('invalid_frame', 'the frame has no string field `t`'), requestId);
  const schema = Object.hasOwn(CLIENT_FRAME_SCHEMAS, type) ? CLIENT_FRAME_SCHEMAS[type] : undefined;
  if (!schema) return fail(new AppError('unknown_frame_type', `unknown frame type ${JSON.stringify(type.slice(0, 40))}`), requestId);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return fail(fromZodError('invalid_frame', `invalid ${type} frame`, parsed.error), requestId);
  return { frame: parsed.data as ClientFrame, requestId, error: null };
}
