import { createHash } from 'node:crypto';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { AttachmentRef } from '../../../contracts/index.js';
import { AppError } from '../../runtime/errors.js';
import { noteStorageFailure } from '../../observability/storage-full.js';
import type { AttachmentCatalog } from '../../commands/conversation-commands.js';

interface StoredMeta {
  name: string;
  contentType: string;
  size: number;
  uploadedBy: string;
}

/**
 * Attachments live in a JetStream object store, named by the SHA-256 of
 * their content: uploading the same bytes twice stores them once. The
 * object's description keeps the first upload's file name and type.
 */
export class AttachmentStore implements AttachmentCatalog {
  private constructor(private readonly store: ObjectStore) {}

  static async open(js: JetStreamClient, namespace: string): Promise<AttachmentStore> {
    const store = await new Objm(js).create(`${namespace}_attachments`, { description: 'Parley message attachments, by SHA-256' });
    return new AttachmentStore(store);
  }

  async put(data: Uint8Array, name: string, contentType: string, uploadedBy: string): Promise<AttachmentRef & { deduplicated: boolean }> {
    const id = createHash('sha256').update(data).digest('hex');
    const existing = await this.meta(id);
    if (existing) return { id, name: existing.name, size: existing.size, contentType: existing.contentType, deduplicated: true };
    const meta: StoredMeta = { name, contentType, size: data.byteLength, uploadedBy };
    try {
      await this.store.putBlob({ name: id, description: JSON.stringify(meta) }, data);
    } catch (err) {
      // The object store shares JetStream's storage: full, it refuses the chunks. Retryable, with the reason.
      const full = noteStorageFailure(err, 'nats');
      if (full) throw new AppError('unavailable', `the attachment store cannot store the upload right now: ${full.reason}; retry later`, { cause: err });
      throw err;
    }
    return { id, name, size: data.byteLength, contentType, deduplicated: false };
  }

  async get(id: string): Promise<{ data: Uint8Array; meta: StoredMeta } | null> {
    const meta = await this.meta(id);
    if (!meta) return null;
    const data = await this.store.getBlob(id);
    return data ? { data, meta } : null;
  }

  async meta(id: string): Promise<StoredMeta | null> {
    const info = await this.store.info(id);
    if (!info || info.deleted) return null;
    try {
      return JSON.parse(info.description ?? '') as StoredMeta;
    } catch {
      return null;
    }
  }

  async resolve(ids: string[]): Promise<AttachmentRef[]> {
    const refs: AttachmentRef[] = [];
    for (const id of [...new Set(ids)]) {
      const meta = await this.meta(id);
      if (!meta) throw new AppError('not_found', `no uploaded attachment ${id}`);
      refs.push({ id, name: meta.name, size: meta.size, contentType: meta.contentType });
    }
    return refs;
  }
}

/** `image/*`-style patterns; a type matches when equal or when the pattern's major type matches. */
export function isAllowedType(contentType: string, allowed: string[]): boolean {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (!/^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(type)) return false;
  return allowed.some((p) => p === type || (p.endsWith('/*') && type.startsWith(p.slice(0, -1))));
}
