/**
 * Compares two bench runs (the JSON lines of scripts/bench.ts) and names what got slower beyond
 * the noise. Used by `deno task bench --compare FILE` after its own run, or on two saved files:
 *
 *   deno run --allow-read scripts/bench_compare.ts SAVED NOW
 *
 * Noise, per figure: the relative spread (max − min over the median) of each side's repeats
 * (`--repeat N`), or FLOOR_PCT, whichever is larger. A figure got slower when its median is
 * worse than the saved median by more than that noise (and so worse than every saved repeat);
 * faster likewise the other way. Without repeats only the floor stands for the noise, and the
 * output says so. It reports; it does not fail (exit 0).
 */

/** A bench JSON line. */
export type Line = Record<string, unknown>;

/**
 * The smallest change counted, in percent: two runs of the same code on a quiet machine differ
 * by a few percent in throughput, so a smaller change says nothing without many repeats.
 */
export const FLOOR_PCT = 5;

/** Whether a larger figure is better. */
type Better = "higher" | "lower";

/**
 * The figures compared, where a line has them, with their units: `result` (in the line's own
 * unit) and the key figures of issue 20 — the latency tail, the server's CPU per operation, the
 * spread between relay pairs and unread input (idle memory without a forced GC is the result of
 * its own lines, idle_no_gc). All but
 * `result` are better lower. bench.ts --repeat keeps every run's value of each as `<name>_runs`.
 */
export const METRICS: Record<string, string> = {
  result: "",
  p99_ms: "ms",
  max_ms: "ms",
  server_cpu_us_per_op: "µs/op",
  server_main_cpu_us_per_op: "µs/op",
  nats_cpu_us_per_op: "µs/op",
  total_cpu_us_per_op: "µs/op",
  pair_done_ratio: "max/median",
  pair_first_ms_max: "ms",
  unread_sockets_max: "sockets",
  unread_bytes_max: "bytes",
};

/** Rates (a unit per second) are better higher; times, latencies, CPU and memory lower. */
export function betterFor(metric: string, unit: unknown): Better {
  if (metric !== "result") return "lower";
  return typeof unit === "string" && /\/s$/.test(unit) ? "higher" : "lower";
}

/** Parameters that name a measurement beside its scenario. */
const NAMING = [
  "store",
  "nodes",
  "pairs",
  "rate_per_s",
  "members",
  "online",
  "concurrency",
  "scrypt_N",
];

/** A measurement's name: its scenario and the parameters that tell it from its siblings. */
export function labelOf(line: Line): string {
  // Older outputs ran latency at 20 % of each run's own relay result (rate_source says so): one
  // measurement, whatever its rate.
  const naming = line.rate_source === undefined ? NAMING : NAMING.filter((k) => k !== "rate_per_s");
  const named = naming.filter((k) => line[k] !== undefined).map((k) => `${k}=${line[k]}`);
  return [line.scenario, ...named].join(" ");
}

/**
 * Keys the measurements of each run: the k-th line with one label in a run is the same
 * measurement in every run.
 */
export function measurementKeys(lines: Line[]): string[] {
  const seen = new Map<string, number>();
  return lines.map((line) => {
    const label = labelOf(line);
    const at = `${line.run ?? 1}/${label}`;
    const k = seen.get(at) ?? 0;
    seen.set(at, k + 1);
    return `${label}#${k}`;
  });
}

interface Figures {
  label: string;
  unit: string;
  /** Each metric's value in each run, in run order; null where a run had none. */
  values: Map<string, (number | null)[]>;
}

export interface Comparison {
  measurement: string;
  metric: string;
  unit: string;
  better: Better;
  saved: { median: number | null; runs: (number | null)[] };
  now: { median: number | null; runs: (number | null)[] };
  /** How much worse now is than saved, in percent (negative: better); null if one is missing. */
  worse_pct: number | null;
  noise_pct: number;
  verdict: "slower" | "faster" | "same" | "missing";
}

export interface CompareResult {
  compare: true;
  floor_pct: number;
  /** False when a side has a single run: the floor alone then stands for the noise. */
  noise_from_repeats: boolean;
  slower: string[];
  faster: string[];
  measurements: Comparison[];
}

/** The JSON lines of a bench output (other lines, the table, are skipped). */
export function parseBenchOutput(text: string): Line[] {
  return text.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l) as Line
  );
}

const finite = (v: unknown): number | null =>
  typeof v === "number" && Number.isFinite(v) ? v : null;

/**
 * Each measurement's figures (METRICS) over the runs (see measurementKeys). Per-run lines are
 * used when there are any; a file of median lines alone gives their `<metric>_runs`.
 */
export function figuresOf(lines: Line[]): Map<string, Figures> {
  const perRun = lines.filter((l) => l.median_of === undefined && typeof l.scenario === "string");
  const medians = lines.filter((l) => typeof l.scenario === "string");
  const use = perRun.length > 0 ? perRun : medians;
  const out = new Map<string, Figures>();
  const keys = measurementKeys(use);
  use.forEach((line, i) => {
    let f = out.get(keys[i]);
    if (!f) {
      f = { label: labelOf(line), unit: String(line.unit ?? ""), values: new Map() };
      out.set(keys[i], f);
    }
    for (const metric of Object.keys(METRICS)) {
      if (line[metric] === undefined) continue;
      const runs = line[`${metric}_runs`];
      const values = perRun.length === 0 && Array.isArray(runs)
        ? runs.map(finite)
        : [finite(line[metric])];
      f.values.set(metric, [...(f.values.get(metric) ?? []), ...values]);
    }
  });
  return out;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]; // the lower middle, as bench.ts takes it
}

/** (max − min) / |median| in percent; 0 for a single value. */
function spreadPct(xs: number[], mid: number): number {
  if (xs.length < 2 || mid === 0) return 0;
  return (Math.max(...xs) - Math.min(...xs)) / Math.abs(mid) * 100;
}

const round = (x: number) => Math.round(x * 10) / 10;

/** Compares `now` with `saved`, measurement by measurement. */
export function compareRuns(saved: Line[], now: Line[], floorPct = FLOOR_PCT): CompareResult {
  const before = figuresOf(saved);
  const after = figuresOf(now);
  const measurements: Comparison[] = [];
  let fromRepeats = true;
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const b = before.get(key);
    const a = after.get(key);
    const f = (a ?? b)!;
    for (const metric of new Set([...(b?.values.keys() ?? []), ...(a?.values.keys() ?? [])])) {
      const better = betterFor(metric, f.unit);
      const oldRuns = b?.values.get(metric) ?? [];
      const newRuns = a?.values.get(metric) ?? [];
      const oldOk = oldRuns.filter((x): x is number => x !== null);
      const newOk = newRuns.filter((x): x is number => x !== null);
      const oldMid = median(oldOk);
      const newMid = median(newOk);
      const c: Comparison = {
        measurement: f.label,
        metric,
        unit: metric === "result" ? f.unit : METRICS[metric],
        better,
        saved: { median: oldMid, runs: oldRuns },
        now: { median: newMid, runs: newRuns },
        worse_pct: null,
        noise_pct: floorPct,
        verdict: "missing",
      };
      measurements.push(c);
      if (oldMid === null || newMid === null || oldMid === 0) continue;
      if (oldOk.length < 2 || newOk.length < 2) fromRepeats = false;
      // Positive: worse, whichever way the figure is better.
      const sign = better === "higher" ? -1 : 1;
      const worse = sign * (newMid - oldMid) / Math.abs(oldMid) * 100;
      const noise = Math.max(floorPct, spreadPct(oldOk, oldMid), spreadPct(newOk, newMid));
      c.worse_pct = round(worse);
      c.noise_pct = round(noise);
      // The noise is at least the saved spread, so a median beyond it is also beyond every
      // saved repeat: a figure the saved code itself never had.
      if (worse > noise) c.verdict = "slower";
      else if (-worse > noise) c.verdict = "faster";
      else c.verdict = "same";
    }
  }
  const named = (v: Comparison["verdict"]) =>
    measurements.filter((m) => m.verdict === v).map((m) =>
      m.metric === "result" ? m.measurement : `${m.measurement} ${m.metric}`
    );
  return {
    compare: true,
    floor_pct: floorPct,
    noise_from_repeats: fromRepeats,
    slower: named("slower"),
    faster: named("faster"),
    measurements,
  };
}

/** The comparison as a table for people (stderr). */
export function compareTable(r: CompareResult): string {
  const cols = ["measurement", "metric", "better", "saved", "now", "worse %", "noise %", "verdict"];
  const show = (x: number | null) => x === null ? "-" : String(x);
  const cells = r.measurements.map((m) => [
    m.measurement,
    m.metric === "result" ? m.unit : m.metric,
    m.better,
    show(m.saved.median),
    show(m.now.median),
    show(m.worse_pct),
    show(m.noise_pct),
    m.verdict === "slower" ? "SLOWER" : m.verdict,
  ]);
  const all = [cols, ...cells];
  const w = cols.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const fmt = (row: string[]) => row.map((c, i) => c.padEnd(w[i])).join(" | ").trimEnd();
  const notes = [
    r.slower.length
      ? `Slower beyond the noise: ${r.slower.join("; ")}`
      : "Nothing got slower beyond the noise.",
    ...(r.noise_from_repeats ? [] : [
      `A side has a single run, so the ${r.floor_pct} % floor alone stands for the noise; --repeat 3 or more on both sides measures it.`,
    ]),
  ];
  return [fmt(cols), w.map((n) => "-".repeat(n)).join("-+-"), ...cells.map(fmt), "", ...notes]
    .join("\n");
}

/** Reads a saved bench output; throws a sentence naming the file if it has no measurement. */
export async function readBenchFile(path: string): Promise<Line[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`Cannot read the saved bench output "${path}": ${(e as Error).message}`);
  }
  let lines: Line[];
  try {
    lines = parseBenchOutput(text);
  } catch (e) {
    throw new Error(`"${path}" has a line that is not JSON: ${(e as Error).message}`);
  }
  if (!lines.some((l) => typeof l.scenario === "string")) {
    throw new Error(`"${path}" holds no bench measurement (JSON lines with a "scenario")`);
  }
  return lines;
}

/** Prints the comparison: one JSON line on stdout, the table on stderr. */
export function printComparison(r: CompareResult): void {
  console.log(JSON.stringify(r));
  console.error(compareTable(r));
}

if (import.meta.main) {
  if (Deno.args.length !== 2) {
    console.error("Usage: deno run --allow-read scripts/bench_compare.ts SAVED NOW");
    Deno.exit(2);
  }
  try {
    const [saved, now] = await Promise.all(Deno.args.map(readBenchFile));
    printComparison(compareRuns(saved, now));
  } catch (e) {
    console.error(`bench_compare: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
