/**
 * The Prometheus text exposition format, version 0.0.4: a pure function from snapshots of
 * metrics to the text a scraper reads. No I/O, so its tests run on strings alone.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label names to values, in the order they are printed. */
export type Labels = Readonly<Record<string, string>>;

export interface ValueSeries {
  labels: Labels;
  value: number;
}

export interface HistogramSeries {
  labels: Labels;
  /** Upper bounds of the buckets, ascending, without +Inf. */
  bounds: readonly number[];
  /** Observations per bucket, not cumulative: one per bound, then those past the last bound. */
  counts: readonly number[];
  sum: number;
}

export type MetricSnapshot =
  | { name: string; help: string; type: "counter" | "gauge"; series: readonly ValueSeries[] }
  | { name: string; help: string; type: "histogram"; series: readonly HistogramSeries[] };

/** HELP text escapes only backslash and newline. */
export function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** Label values escape backslash, double quote and newline. */
export function escapeLabelValue(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** Go's float syntax, which Prometheus parses: NaN, +Inf, -Inf, else plain or 1e-7 notation. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return "";
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}

/** The exposition text for `metrics`, one HELP and TYPE block each, ending with a newline. */
export function renderExposition(metrics: readonly MetricSnapshot[]): string {
  const lines: string[] = [];
  for (const m of metrics) {
    lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
    if (m.type !== "histogram") {
      for (const s of m.series) {
        lines.push(`${m.name}${labelText(s.labels)} ${formatValue(s.value)}`);
      }
      continue;
    }
    for (const s of m.series) {
      let cumulative = 0;
      s.bounds.forEach((bound, i) => {
        cumulative += s.counts[i];
        const le = labelText(s.labels, ["le", formatValue(bound)]);
        lines.push(`${m.name}_bucket${le} ${cumulative}`);
      });
      cumulative += s.counts[s.bounds.length];
      lines.push(`${m.name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${cumulative}`);
      lines.push(`${m.name}_sum${labelText(s.labels)} ${formatValue(s.sum)}`);
      lines.push(`${m.name}_count${labelText(s.labels)} ${cumulative}`);
    }
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}
