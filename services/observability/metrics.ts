/**
 * A small Prometheus registry (text exposition format 0.0.4): counters,
 * gauges and histograms with labels. One registry per runtime, so every
 * service in a process shows up on the one `/metrics` the gateway serves,
 * and two platforms in one test process never share counts.
 *
 * Hot paths (frames in and out) take a bound child (`counter.labels({...})`)
 * once and then only add to a number: no string building per increment.
 */
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';

export type Labels = Record<string, string>;
type Collect = () => void | Promise<void>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const COLLECT_TIMEOUT_MS = 2000;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatLabels(names: readonly string[], values: readonly string[], extra = ''): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

abstract class Family<Child> {
  protected readonly children = new Map<string, { values: string[]; child: Child }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME.test(name)) throw new Error(`invalid metric name ${name}`);
  }
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected abstract create(): Child;

  /** The series for these label values, created on first use. */
  labels(labels: Labels = {}): Child {
    const values = this.labelNames.map((n) => labels[n] ?? '');
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (!entry) this.children.set(key, (entry = { values, child: this.create() }));
    return entry.child;
  }

  /** Forgets every series (gauges recomputed from scratch at each scrape). */
  reset(): void {
    this.children.clear();
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${this.name} ${this.type}`];
    for (const { values, child } of this.children.values()) lines.push(...this.renderChild(values, child));
    return lines.join('\n');
  }
  protected abstract renderChild(values: string[], child: Child): string[];
}

export class CounterChild {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

export class Counter extends Family<CounterChild> {
  readonly type = 'counter';
  protected create(): CounterChild {
    return new CounterChild();
  }
  inc(labels?: Labels, by = 1): void {
    this.labels(labels).inc(by);
  }
  protected renderChild(values: string[], c: CounterChild): string[] {
    return [`${this.name}${formatLabels(this.labelNames, values)} ${formatValue(c.value)}`];
  }
}

export class GaugeChild {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(by = 1): void {
    this.value += by;
  }
  dec(by = 1): void {
    this.value -= by;
  }
}

export class Gauge extends Family<GaugeChild> {
  readonly type = 'gauge';
  protected create(): GaugeChild {
    return new GaugeChild();
  }
  set(labels: Labels, v: number): void {
    this.labels(labels).set(v);
  }
  protected renderChild(values: string[], g: GaugeChild): string[] {
    return [`${this.name}${formatLabels(this.labelNames, values)} ${formatValue(g.value)}`];
  }
}

export class HistogramChild {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(private readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    // Buckets are few (about a dozen): a linear scan beats a binary search here.
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) this.counts[i]!++;
  }
}

export class Histogram extends Family<HistogramChild> {
  readonly type = 'histogram';
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
  }
  protected create(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  observe(labels: Labels, v: number): void {
    this.labels(labels).observe(v);
  }
  protected renderChild(values: string[], h: HistogramChild): string[] {
    const lines = this.buckets.map((b, i) => `${this.name}_bucket${formatLabels(this.labelNames, values, `le="${formatValue(b)}"`)} ${h.counts[i]}`);
    lines.push(`${this.name}_bucket${formatLabels(this.labelNames, values, 'le="+Inf"')} ${h.count}`);
    lines.push(`${this.name}_sum${formatLabels(this.labelNames, values)} ${formatValue(h.sum)}`);
    lines.push(`${this.name}_count${formatLabels(this.labelNames, values)} ${h.count}`);
    return lines;
  }
}

/** Latency buckets in seconds, 0.5 ms to 10 s. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/**
 * prom-client's process and Node.js runtime series (`process_*`, `nodejs_*`),
 * one registry per `role` label value for the whole process: the series are
 * process-wide anyway, and collectDefaultMetrics installs observers (GC,
 * event-loop delay) that must not pile up with every runtime a test opens.
 */
const runtimeRegistries = new Map<string, Registry>();

function runtimeRegistry(role: string): Registry {
  let registry = runtimeRegistries.get(role);
  if (!registry) {
    // Required on first use, not imported: the operator CLI shares this module and never needs prom-client.
    const prom = createRequire(import.meta.url)('prom-client') as typeof import('prom-client');
    registry = new prom.Registry();
    prom.collectDefaultMetrics({ register: registry, labels: { role } });
    runtimeRegistries.set(role, registry);
  }
  return registry;
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family<unknown>>();
  private readonly collectors = new Set<Collect>();
  private runtime: Registry | null = null;

  /**
   * Adds prom-client's default process and runtime series to this registry's
   * exposition, labelled `role` (the process's roles, comma-separated in
   * canonical order, e.g. `gateway,projector`). Their names (`process_*`,
   * `nodejs_*`) never collide with Parley's own (`parley_*`); render() checks.
   */
  includeRuntimeSeries(role: string): void {
    this.runtime = runtimeRegistry(role);
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.register(name, () => new Counter(name, help, labelNames), Counter);
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.register(name, () => new Gauge(name, help, labelNames), Gauge);
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = LATENCY_BUCKETS): Histogram {
    return this.register(name, () => new Histogram(name, help, labelNames, buckets), Histogram);
  }

  /**
   * Runs before every scrape (e.g. to read a connection count or query a
   * consumer's lag). A collector that fails or hangs only leaves its gauges
   * at their previous values. Returns a function that removes it.
   */
  onCollect(fn: Collect): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }

  async render(): Promise<string> {
    await Promise.all(
      [...this.collectors].map((fn) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, COLLECT_TIMEOUT_MS)));
        return Promise.race([Promise.resolve().then(fn), timeout])
          .catch(() => undefined)
          .finally(() => clearTimeout(timer));
      }),
    );
    const own = [...this.families.values()].map((f) => f.render()).join('\n') + '\n';
    if (!this.runtime) return own;
    for (const metric of this.runtime.getMetricsAsArray()) {
      // One exposition, one family per name: a clash would make scrapers drop the whole page.
      if (this.families.has(metric.name)) throw new Error(`metric ${metric.name} is both a Parley and a runtime series`);
    }
    // prom-client separates families with blank lines; valid, but one style per page reads better.
    const runtime = (await this.runtime.metrics()).split('\n').filter((line) => line !== '');
    return own + runtime.join('\n') + '\n';
  }

  /** Registering the same name twice returns the first family, so several runners can share one. */
  private register<F extends Family<unknown>>(name: string, make: () => F, kind: abstract new (...args: never[]) => F): F {
    const existing = this.families.get(name);
    if (!existing && this.runtime?.getSingleMetric(name)) throw new Error(`metric ${name} is already registered as a runtime series`);
    if (existing) {
      if (!(existing instanceof kind)) throw new Error(`metric ${name} is already registered as a ${existing.type}`);
      return existing;
    }
    const family = make();
    this.families.set(name, family as Family<unknown>);
    return family;
  }
}
