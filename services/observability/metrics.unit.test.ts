import { describe, expect, it } from 'vitest';
import { MetricsRegistry } from './metrics.js';

describe('metrics registry', () => {
  it('renders counters, gauges and histograms in the Prometheus text format', async () => {
    const r = new MetricsRegistry();
    const c = r.counter('t_requests_total', 'Requests.', ['route']);
    c.inc({ route: '/a' });
    c.labels({ route: '/a' }).inc(2);
    c.inc({ route: 'quote"back\\slash\nnewline' });
    r.gauge('t_open', 'Open things.').labels().set(7);
    const h = r.histogram('t_seconds', 'Latency.', ['op'], [0.1, 1]);
    h.observe({ op: 'x' }, 0.05);
    h.observe({ op: 'x' }, 0.5);
    h.observe({ op: 'x' }, 5);
    const text = await r.render();
    expect(text).toContain('# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n');
    expect(text).toContain('t_requests_total{route="/a"} 3\n');
    expect(text).toContain('t_requests_total{route="quote\\"back\\\\slash\\nnewline"} 1\n');
    expect(text).toContain('# TYPE t_open gauge\nt_open 7\n');
    expect(text).toContain(
      't_seconds_bucket{op="x",le="0.1"} 1\nt_seconds_bucket{op="x",le="1"} 2\nt_seconds_bucket{op="x",le="+Inf"} 3\nt_seconds_sum{op="x"} 5.55\nt_seconds_count{op="x"} 3\n',
    );
  });

  it('shares a family registered twice and refuses a name reused with another type', () => {
    const r = new MetricsRegistry();
    expect(r.counter('t_x_total', 'x', ['a'])).toBe(r.counter('t_x_total', 'x', ['a']));
    expect(() => r.gauge('t_x_total', 'x')).toThrow(/already registered/);
    expect(() => r.counter('bad-name', 'x')).toThrow(/invalid metric name/);
  });

  it('appends the process and runtime series with the role label, and refuses a Parley family with one of their names', async () => {
    const r = new MetricsRegistry();
    r.counter('t_own_total', 'Own.').labels().inc();
    r.includeRuntimeSeries('gateway,projector');
    const text = await r.render();
    expect(text).toContain('# TYPE t_own_total counter\nt_own_total 1\n');
    expect(text).toMatch(/^process_resident_memory_bytes\{role="gateway,projector"\} \d+$/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds\{role="gateway,projector"\} /m);
    expect(text).not.toMatch(/\n\n/);
    expect(() => r.gauge('process_resident_memory_bytes', 'clash')).toThrow(/already registered as a runtime series/);
  });

  it('runs collectors before rendering and survives one that fails', async () => {
    const r = new MetricsRegistry();
    const g = r.gauge('t_lag', 'Lag.', ['p']);
    r.onCollect(() => g.set({ p: 'a' }, 42));
    const remove = r.onCollect(async () => {
      throw new Error('down');
    });
    expect(await r.render()).toContain('t_lag{p="a"} 42');
    remove();
  });
});
