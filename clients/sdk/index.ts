/** Parley client SDK: `new ParleyClient({ url, token, WebSocket?, storage? })`. Browser-safe; see node-storage.ts for Node. */
export { ParleyClient, type ParleyClientOptions, type ConnectionState, type WebSocketFactory, type WebSocketLike } from './client.js';
export { ParleyError } from './errors.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { MemoryStorage, keyValueStorage, type PositionStorage } from './storage.js';
export type { EventFrame, SyncedFrame, TypingFrame, ReceiptFrame, SendResult, CommandResult, Command } from '../../contracts/index.js';
