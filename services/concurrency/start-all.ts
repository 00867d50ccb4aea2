/** Something that runs between a start and a stop (one shard's consumer of a worker). */
export interface Startable {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `parts` one after another. If one cannot start, the ones already
 * started are stopped before the error is thrown: a worker runs every shard
 * or none, never a silent subset.
 */
export async function startAll(parts: readonly Startable[]): Promise<void> {
  const started: Startable[] = [];
  try {
    for (const part of parts) {
      await part.start();
      started.push(part);
    }
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()));
    throw err;
  }
}
