/**
 * Counter, gauge and histogram families for the request path, shown through a prom-client Registry.
 *
 * prom-client hashes the label values on every observe and inc, even on a child returned by `labels()`:
 * on the model server's request path that was a few per cent of the main thread. A child here is a plain
 * object holding numbers, resolved once (per model version, per route and status); observing is a bucket
 * search and two additions. The registry only reads them when /metrics is scraped, in prom-client's own
 * text format (`registry.registerMetric` accepts any object with name, help, type and get()).
 */
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

interface MetricValue {
  value: number;
  labels: Labels;
  /** Printed after `labels` (prom-client puts `le` first, then the child's labels). */
  sharedLabels?: Labels;
  metricName?: string;
}

interface FamilyOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  registers: Registry[];
}

abstract class Family<Child> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected readonly children = new Map<string, { labels: Labels; child: Child }>();

  constructor(options: FamilyOptions) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  /** The child for these label values, in labelNames order; made on first use, then the same object. */
  child(...values: string[]): Child {
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (entry === undefined) {
      if (values.length !== this.labelNames.length)
        throw new Error(`${this.name}: ${values.length} label values for ${this.labelNames.length} labels`);
      const labels: Labels = {};
      this.labelNames.forEach((name, i) => {
        labels[name] = values[i]!;
      });
      entry = { labels, child: this.create() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  protected abstract create(): Child;
  protected abstract values(labels: Labels, child: Child, out: MetricValue[]): void;

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: MetricValue[];
  }> {
    const values: MetricValue[] = [];
    for (const { labels, child } of this.children.values()) this.values(labels, child, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.children.clear();
  }
}

export class CounterChild {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

export class GaugeChild {
  value = 0;
  set(value: number): void {
    this.value = value;
  }
  inc(): void {
    this.value++;
  }
  dec(): void {
    this.value--;
  }
}

/** A family whose children hold one number each (counters, gauges). */
abstract class ValueFamily<Child extends { value: number }> extends Family<Child> {
  protected values(labels: Labels, child: Child, out: MetricValue[]): void {
    out.push({ value: child.value, labels });
  }
}

export class CounterFamily extends ValueFamily<CounterChild> {
  readonly type = 'counter';
  protected create(): CounterChild {
    return new CounterChild();
  }
}

export class GaugeFamily extends ValueFamily<GaugeChild> {
  readonly type = 'gauge';
  protected create(): GaugeChild {
    return new GaugeChild();
  }
}

export class HistogramChild {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class HistogramFamily extends Family<HistogramChild> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(options: FamilyOptions & { buckets: readonly number[] }) {
    super(options);
    this.buckets = [...options.buckets].sort((a, b) => a - b);
  }

  protected create(): HistogramChild {
    return new HistogramChild(this.buckets);
  }

  protected values(labels: Labels, child: HistogramChild, out: MetricValue[]): void {
    let cumulative = 0;
    const bucket = `${this.name}_bucket`;
    for (let i = 0; i < this.buckets.length; i++) {
      cumulative += child.counts[i]!;
      out.push({
        value: cumulative,
        labels: { le: String(this.buckets[i]) },
        sharedLabels: labels,
        metricName: bucket,
      });
    }
    out.push({ value: child.count, labels: { le: '+Inf' }, sharedLabels: labels, metricName: bucket });
    out.push({ value: child.sum, labels, metricName: `${this.name}_sum` });
    out.push({ value: child.count, labels, metricName: `${this.name}_count` });
  }
}
