import type { Subjects } from '../../contracts/index.js';
import { openNotifierProjection } from '../../services/notifier/open-projection.js';
import { NOTIFIER } from '../../services/notifier/projection.js';
import { projectionsFor } from '../../services/projector/projections.js';
import { AppError } from '../../services/runtime/errors.js';
import type { Projection } from '../../services/projection/projection.js';
import type { OpsContext } from './context.js';

/**
 * Every projection the platform runs, known by name whether or not it has
 * run yet: the projector's read models, and the notifier's projection into
 * notification rows.
 */
export function projectorNames(subjects: Subjects): string[] {
  return [...projectionsFor(subjects).map((p) => p.name), NOTIFIER];
}

function unknown(subjects: Subjects, name: string): AppError {
  return new AppError('not_found', `no projector named ${name} (known: ${projectorNames(subjects).join(', ')})`);
}

function withTables(subjects: Subjects, name: string): Projection | undefined {
  return projectionsFor(subjects).find((p) => p.name === name && p.tables?.length);
}

/**
 * Whether a projection can be rebuilt into shadow tables. Only the
 * projector's can: the notifier's has side effects (it sends
 * notifications) and declares no tables.
 */
export function isRebuildable(subjects: Subjects, name: string): boolean {
  return withTables(subjects, name) !== undefined;
}

export function rebuildableProjection(subjects: Subjects, name: string): Projection {
  const found = withTables(subjects, name);
  if (found) return found;
  if (projectorNames(subjects).includes(name))
    throw new Error(`projector ${name} cannot be rebuilt: it declares no tables (it has side effects); reset it instead`);
  throw unknown(subjects, name);
}

/** The projection a projector runs, to re-drive its parked events through it. */
export async function openProjection(ctx: OpsContext, name: string): Promise<Projection> {
  if (name === NOTIFIER) return openNotifierProjection(ctx);
  const found = projectionsFor(ctx.subjects).find((p) => p.name === name);
  if (!found) throw unknown(ctx.subjects, name);
  return found;
}

/** Refuses a name no projection has and no checkpoint row carries. */
export function checkKnown(subjects: Subjects, name: string, hasCheckpoint: boolean): void {
  if (!hasCheckpoint && !projectorNames(subjects).includes(name)) throw unknown(subjects, name);
}
