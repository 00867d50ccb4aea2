/**
 * One Parley process for the benchmark, started by the runner so its CPU and
 * memory can be read from /proc on their own: `gateway` runs only the
 * gateway (what the per-message CPU and per-connection memory figures are
 * about); `workers` runs the projector, membership reactor, analytics and
 * notifier (plus an idle gateway nobody connects to: startPlatform always
 * has one). Configuration comes from the environment, as for `npm start`.
 */
import { startPlatform, type Platform } from '../../platform.js';
import { loadConfig } from '../../../services/runtime/config.js';
import { createLogger } from '../../../services/observability/logger.js';
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import { serve } from '../lib/ipc.js';

let platform: Platform | null = null;
let profiler: Session | null = null;

serve({
  async start(p: { role: 'gateway' | 'workers'; natsUrl: string; databaseUrl: string }) {
    const config = loadConfig(process.env);
    const log = createLogger({ level: config.logLevel, base: { service: `bench-${p.role}` } });
    platform = await startPlatform(config, log, { natsUrl: p.natsUrl, databaseUrl: p.databaseUrl, withWorkers: p.role === 'workers' });
    return { port: platform.gateway.port, pid: process.pid };
  },
  gc() {
    // Run with --expose-gc: memory figures count what is retained, not garbage not yet collected.
    (globalThis as { gc?: () => void }).gc?.();
    return null;
  },
  /** CPU profile of this process between two calls (where a gateway's microseconds per message go). */
  async profileStart() {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
    return null;
  },
  async profileStop(p: { file: string }) {
    if (!profiler) return null;
    const { profile } = await profiler.post('Profiler.stop');
    fs.writeFileSync(p.file, JSON.stringify(profile));
    profiler.disconnect();
    profiler = null;
    return p.file;
  },
  connections() {
    return platform?.gateway.sockets.connectionCount ?? 0;
  },
  async stop() {
    await platform?.stop();
    platform = null;
    setTimeout(() => process.exit(0), 10);
    return null;
  },
});
