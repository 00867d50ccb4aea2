/**
 * Where a device keeps its sync position between runs. Browsers can back it
 * with localStorage or IndexedDB, Node with a file (see node-storage.ts).
 */
export interface PositionStorage {
  load(): Promise<string | null> | string | null;
  save(position: string): Promise<void> | void;
}

export class MemoryStorage implements PositionStorage {
  constructor(private value: string | null = null) {}
  load(): string | null {
    return this.value;
  }
  save(position: string): void {
    this.value = position;
  }
}

/** `localStorage`-style storage (anything with getItem / setItem). */
export function keyValueStorage(store: { getItem(k: string): string | null; setItem(k: string, v: string): void }, key = 'parley.position'): PositionStorage {
  return { load: () => store.getItem(key), save: (p) => store.setItem(key, p) };
}
