/**
 * Source addresses for load connections: Linux routes all of 127.0.0.0/8 to
 * loopback, so spreading connections over many 127.x.y.z sources gives each
 * its own ~28,000 ephemeral ports and keeps TIME_WAIT entries of a
 * reconnect storm from colliding. Every load process has its own /16.
 */
export function sourceAddress(worker: number, n: number): string {
  const slot = n % (250 * 250);
  return `127.${20 + (worker % 200)}.${1 + Math.floor(slot / 250)}.${1 + (slot % 250)}`;
}

/** Benchmarks only ever target loopback. */
export function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) throw new Error(`refusing to load a non-loopback target: ${url}`);
}
