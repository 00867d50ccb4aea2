import type { Subjects } from '../../contracts/index.js';
import { AppError } from '../runtime/errors.js';
import type { Projection } from '../projection/projection.js';
import { readModelProjection } from './read-model.js';

/**
 * The tables the read model projection owns (everything it writes). A
 * rebuild recreates exactly these; a table added to the read model must be
 * added here too, or a rebuild would leave it behind (the rebuild refuses to
 * run when the projection writes a table that is not listed: see shadow.ts).
 */
export const READ_MODEL_TABLES = [
  'conversations',
  'conversation_members',
  'messages',
  'message_versions',
  'message_reactions',
  'message_mentions',
  'message_attachments',
  'user_blocks',
  'user_last_seqs',
] as const;

/** Every Postgres projection of the platform: what the projector service runs and the operator CLI can rebuild. */
export function projectionsFor(subjects: Subjects): Projection[] {
  const readModel = readModelProjection(subjects);
  return [{ ...readModel, tables: readModel.tables ?? READ_MODEL_TABLES }];
}

export function projectionByName(subjects: Subjects, name: string): Projection {
  const all = projectionsFor(subjects);
  const found = all.find((p) => p.name === name);
  if (!found) throw new AppError('not_found', `no projector named ${name} (known: ${all.map((p) => p.name).join(', ')})`);
  return found;
}
