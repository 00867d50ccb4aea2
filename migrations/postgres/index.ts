import type { Migration } from 'kysely';
import * as m0001 from './0001_read_model.js';

/** Every Postgres migration, in order. Names sort lexically; never rename or edit one that has shipped. */
export const postgresMigrations: Record<string, Migration> = {
  '0001_read_model': m0001,
};
