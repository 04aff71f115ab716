/**
 * A small metrics registry: counters, gauges and histograms, with labels. A labelled child is
 * resolved once, where the metric is set up; recording is then a number update with no lookup
 * and no allocation, cheap enough for the chat hot path.
 */

import type { Labels, MetricSnapshot } from "./exposition.ts";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class Counter {
  #value = 0;

  inc(by = 1): void {
    if (by < 0) throw new RangeError(`A counter cannot go down (by ${by})`);
    this.#value += by;
  }

  get value(): number {
    return this.#value;
  }
}

export class Gauge {
  #value = 0;

  set(value: number): void {
    this.#value = value;
  }

  inc(by = 1): void {
    this.#value += by;
  }

  dec(by = 1): void {
    this.#value -= by;
  }

  get value(): number {
    return this.#value;
  }
}

export class Histogram {
  /** Per bucket, not cumulative; the last one holds observations past every bound. */
  readonly #counts: Float64Array;
  #sum = 0;

  /** Upper bounds, ascending; a value equal to a bound falls in that bound's bucket. */
  constructor(readonly bounds: readonly number[]) {
    this.#counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.#counts[i]++;
    this.#sum += value;
  }

  get count(): number {
    return this.#counts.reduce((a, b) => a + b, 0);
  }

  get sum(): number {
    return this.#sum;
  }

  /** Bucket counts (not cumulative), copied. */
  counts(): number[] {
    return Array.from(this.#counts);
  }
}

type Kind = "counter" | "gauge" | "histogram";

/** One metric name and its children, one child per set of label values. */
export class Family<C> {
  readonly #children = new Map<string, { labels: Labels; child: C }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: Kind,
    readonly labelNames: readonly string[],
    private readonly make: () => C,
  ) {}

  /** The child for these label values (every label name, no other), made on first use. */
  labels(values: Record<string, string> = {}): C {
    const given = Object.keys(values);
    if (
      given.length !== this.labelNames.length ||
      !this.labelNames.every((n) => Object.hasOwn(values, n))
    ) {
      throw new TypeError(
        `Metric "${this.name}" takes labels [${this.labelNames}], not [${given}]`,
      );
    }
    const ordered = this.labelNames.map((n) => values[n]);
    const key = JSON.stringify(ordered);
    let entry = this.#children.get(key);
    if (!entry) {
      const labels = Object.fromEntries(this.labelNames.map((n, i) => [n, ordered[i]]));
      entry = { labels, child: this.make() };
      this.#children.set(key, entry);
    }
    return entry.child;
  }

  children(): Iterable<{ labels: Labels; child: C }> {
    return this.#children.values();
  }
}

export class Registry {
  readonly #families: Family<Counter | Gauge | Histogram>[] = [];
  readonly #beforeCollect: (() => void | Promise<void>)[] = [];

  /** A counter; its name ends in `_total`, as the format's conventions ask. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Family<Counter> {
    if (!name.endsWith("_total")) {
      throw new TypeError(`Counter "${name}" must be named with a "_total" suffix`);
    }
    return this.#add(name, help, "counter", labelNames, () => new Counter());
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Family<Gauge> {
    return this.#add(name, help, "gauge", labelNames, () => new Gauge());
  }

  histogram(
    name: string,
    help: string,
    bounds: readonly number[],
    labelNames: readonly string[] = [],
  ): Family<Histogram> {
    if (labelNames.includes("le")) throw new TypeError(`Histogram "${name}" cannot use label "le"`);
    if (
      bounds.length === 0 ||
      bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]))
    ) {
      throw new RangeError(`Histogram "${name}" needs finite bounds in ascending order`);
    }
    const frozen = Object.freeze([...bounds]);
    return this.#add(name, help, "histogram", labelNames, () => new Histogram(frozen));
  }

  /** Runs before each collection: for gauges read from state at scrape time, not kept up. */
  beforeCollect(update: () => void | Promise<void>): void {
    this.#beforeCollect.push(update);
  }

  /** Every metric's current values, in the order they were registered. */
  async collect(): Promise<MetricSnapshot[]> {
    for (const update of this.#beforeCollect) await update();
    return this.#families.map((f): MetricSnapshot => {
      const entries = [...f.children()];
      if (f.type === "histogram") {
        return {
          name: f.name,
          help: f.help,
          type: "histogram",
          series: entries.map(({ labels, child }) => {
            const h = child as Histogram;
            return { labels, bounds: h.bounds, counts: h.counts(), sum: h.sum };
          }),
        };
      }
      return {
        name: f.name,
        help: f.help,
        type: f.type,
        series: entries.map(({ labels, child }) => ({
          labels,
          value: (child as Counter | Gauge).value,
        })),
      };
    });
  }

  #add<C extends Counter | Gauge | Histogram>(
    name: string,
    help: string,
    type: Kind,
    labelNames: readonly string[],
    make: () => C,
  ): Family<C> {
    if (!METRIC_NAME.test(name)) throw new TypeError(`"${name}" is not a valid metric name`);
    if (this.#families.some((f) => f.name === name)) {
      throw new TypeError(`Metric "${name}" is registered twice`);
    }
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__")) {
        throw new TypeError(`"${label}" is not a valid label name for "${name}"`);
      }
    }
    const family = new Family(name, help, type, [...labelNames], make);
    this.#families.push(family as Family<Counter | Gauge | Histogram>);
    return family;
  }
}
