/**
 * A strict parser for the Prometheus text format 0.0.4, written from the spec rather than from
 * the renderer, so that tests can hold the renderer's output to it. It throws on anything a
 * scraper could reject or misread: bad names, escapes or numbers, samples outside their
 * family, duplicates, and histograms whose buckets are not cumulative or lack +Inf.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function fail(line: number, message: string): never {
  throw new SyntaxError(`Line ${line}: ${message}`);
}

function parseFloatStrict(text: string, line: number): number {
  if (!FLOAT.test(text)) fail(line, `"${text}" is not a number`);
  if (text === "NaN") return NaN;
  if (text.endsWith("Inf")) return text.startsWith("-") ? -Infinity : Infinity;
  return Number(text);
}

/** Undoes `\\`, `\n` and (in label values) `\"`; any other backslash is an error. */
function unescape(text: string, quotes: boolean, line: number): string {
  return text.replace(/\\(.?)/g, (_, c: string) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    if (c === '"' && quotes) return '"';
    fail(line, `bad escape "\\${c}"`);
  });
}

function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  if (!text.startsWith("{")) return { labels, rest: text };
  let at = 1;
  while (text[at] !== "}") {
    const name = LABEL_NAME.exec(text.slice(at))?.[0];
    if (!name) fail(line, `bad label name at "${text.slice(at)}"`);
    at += name.length;
    if (text.slice(at, at + 2) !== '="') fail(line, `expected =" after label ${name}`);
    at += 2;
    const start = at;
    while (at < text.length && text[at] !== '"') at += text[at] === "\\" ? 2 : 1;
    if (at >= text.length) fail(line, `unterminated value of label ${name}`);
    if (Object.hasOwn(labels, name)) fail(line, `label ${name} given twice`);
    labels[name] = unescape(text.slice(start, at), true, line);
    at++;
    if (text[at] === ",") at++;
    else if (text[at] !== "}") fail(line, `expected , or } after label ${name}`);
  }
  return { labels, rest: text.slice(at + 1) };
}

/** Which family a sample name belongs to, given the family being read. */
function ownerOf(sample: string, family: Family | undefined): boolean {
  if (!family) return false;
  if (family.type !== "histogram") return sample === family.name;
  return [`${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`].includes(sample);
}

function labelKey(labels: Record<string, string>, without?: string): string {
  return JSON.stringify(Object.entries(labels).filter(([k]) => k !== without).sort());
}

/** Checks each histogram series: ascending le, cumulative counts, +Inf last, _count equal. */
function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  const of = (labels: Record<string, string>, without?: string) => {
    const key = labelKey(labels, without);
    if (!series.has(key)) series.set(key, { buckets: [] });
    return series.get(key)!;
  };
  for (const s of f.samples) {
    if (s.name.endsWith("_bucket")) {
      if (!Object.hasOwn(s.labels, "le")) throw new SyntaxError(`${s.name} without le`);
      of(s.labels, "le").buckets.push([parseFloatStrict(s.labels.le, 0), s.value]);
    } else if (s.name.endsWith("_count")) of(s.labels).count = s.value;
    else of(s.labels).sum = s.value;
  }
  for (const [key, s] of series) {
    const where = `${f.name}${key}`;
    if (s.count === undefined || s.sum === undefined) {
      throw new SyntaxError(`${where}: missing _count or _sum`);
    }
    const last = s.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new SyntaxError(`${where}: no le="+Inf" bucket`);
    s.buckets.forEach(([le, n], i) => {
      if (i > 0 && (le <= s.buckets[i - 1][0] || n < s.buckets[i - 1][1])) {
        throw new SyntaxError(`${where}: buckets not ascending and cumulative at le=${le}`);
      }
    });
    if (last[1] !== s.count) throw new SyntaxError(`${where}: _count differs from +Inf bucket`);
  }
}

export function parseExposition(text: string): Map<string, Family> {
  if (text !== "" && !text.endsWith("\n")) throw new SyntaxError("Text must end with a newline");
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: Family | undefined;
  const family = (name: string, line: number) => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: "untyped", help: "", samples: [] };
      families.set(name, f);
    } else if (f !== current || f.samples.length > 0) {
      fail(line, `metadata for ${name} after its samples or apart from them`);
    }
    current = f;
    return f;
  };
  const lines = text.split("\n").slice(0, -1);
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(raw);
      if (!m) fail(line, `only HELP and TYPE comments are expected: "${raw}"`);
      const [, keyword, name, rest] = m;
      if (NAME.exec(name)?.[0] !== name) fail(line, `bad metric name "${name}"`);
      const f = family(name, line);
      if (keyword === "HELP") {
        if (f.help !== "") fail(line, `second HELP for ${name}`);
        f.help = unescape(rest, false, line);
      } else {
        if (f.type !== "untyped") fail(line, `second TYPE for ${name}`);
        if (!TYPES.has(rest)) fail(line, `unknown type "${rest}"`);
        f.type = rest;
        if (rest === "counter" && !name.endsWith("_total")) {
          fail(line, `counter ${name} does not end in _total`);
        }
      }
      return;
    }
    const name = NAME.exec(raw)?.[0];
    if (!name) fail(line, `bad sample "${raw}"`);
    const { labels, rest } = parseLabels(raw.slice(name.length), line);
    const parts = rest.split(" ");
    if (parts[0] !== "" || parts.length < 2 || parts.length > 3) {
      fail(line, `expected " value [timestamp]" after the labels: "${rest}"`);
    }
    const value = parseFloatStrict(parts[1], line);
    if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) fail(line, "bad timestamp");
    if (!ownerOf(name, current)) fail(line, `sample ${name} outside its family's block`);
    const key = name + labelKey(labels);
    if (seen.has(key)) fail(line, `duplicate sample ${name}${JSON.stringify(labels)}`);
    seen.add(key);
    current!.samples.push({ name, labels, value });
  });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

/** The value of one sample (labels must match exactly); undefined when absent. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const key = labelKey(labels);
  for (const f of families.values()) {
    for (const s of f.samples) if (s.name === name && labelKey(s.labels) === key) return s.value;
  }
  return undefined;
}
