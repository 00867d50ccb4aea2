/** A minimal typed event emitter (no Node dependency, so the SDK runs in browsers). */
export class Emitter<Events extends Record<string, (...args: any[]) => void>> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set!.delete(listener);
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    for (const l of this.listeners.get(event) ?? []) {
      try {
        (l as (...a: Parameters<Events[K]>) => void)(...args);
      } catch {
        // A listener's bug must not break the connection loop.
      }
    }
  }
}
