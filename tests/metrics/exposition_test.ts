/** The text format renderer: exact output, escaping, histograms, and the strict parser's view. */

import assert from "node:assert/strict";
import {
  escapeHelp,
  escapeLabelValue,
  formatValue,
  type MetricSnapshot,
  renderExposition,
} from "../../src/metrics/exposition.ts";
import { parseExposition, sampleValue } from "../helpers/exposition.ts";

Deno.test("renderExposition() writes HELP, TYPE and samples, ending with a newline", () => {
  const text = renderExposition([
    { name: "up_total", help: "Things done.", type: "counter", series: [{ labels: {}, value: 3 }] },
    {
      name: "temp",
      help: "Heat.",
      type: "gauge",
      series: [
        { labels: { room: "a", floor: "1" }, value: -1.5 },
        { labels: { room: "b", floor: "2" }, value: 0 },
      ],
    },
  ]);
  assert.equal(
    text,
    [
      "# HELP up_total Things done.",
      "# TYPE up_total counter",
      "up_total 3",
      "# HELP temp Heat.",
      "# TYPE temp gauge",
      'temp{room="a",floor="1"} -1.5',
      'temp{room="b",floor="2"} 0',
      "",
    ].join("\n"),
  );
});

Deno.test("renderExposition() of nothing is empty, and a metric with no series has only metadata", () => {
  assert.equal(renderExposition([]), "");
  assert.equal(
    renderExposition([{ name: "x", help: "h", type: "gauge", series: [] }]),
    "# HELP x h\n# TYPE x gauge\n",
  );
});

Deno.test("escapeLabelValue() escapes backslash, quote and newline; escapeHelp() not quotes", () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.equal(escapeHelp('a\\b"c\nd'), 'a\\\\b"c\\nd');
  assert.equal(escapeLabelValue("plain ünïcödé"), "plain ünïcödé");
});

Deno.test("renderExposition() escapes label values and help so the parser reads them back", () => {
  const nasty = 'C:\\path "quoted"\nnext line';
  const text = renderExposition([{
    name: "files_total",
    help: "Back\\slash and\nnewline",
    type: "counter",
    series: [{ labels: { path: nasty }, value: 1 }],
  }]);
  assert.ok(text.includes('files_total{path="C:\\\\path \\"quoted\\"\\nnext line"} 1\n'));
  assert.equal(text.split("\n").length, 4, "no raw newline inside a line");
  const parsed = parseExposition(text);
  assert.equal(parsed.get("files_total")!.help, "Back\\slash and\nnewline");
  assert.equal(sampleValue(parsed, "files_total", { path: nasty }), 1);
});

Deno.test("formatValue() uses the format's spellings of infinities and NaN", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(0.00025), "0.00025");
  assert.equal(formatValue(1e-7), "1e-7");
  assert.equal(formatValue(2 ** 53), "9007199254740992");
});

Deno.test("renderExposition() writes histograms as cumulative buckets, +Inf, _sum and _count", () => {
  const metric: MetricSnapshot = {
    name: "latency_seconds",
    help: "How long.",
    type: "histogram",
    series: [{
      labels: { op: "commit" },
      bounds: [0.001, 0.01, 0.1],
      counts: [2, 0, 3, 1],
      sum: 1.25,
    }],
  };
  assert.equal(
    renderExposition([metric]),
    [
      "# HELP latency_seconds How long.",
      "# TYPE latency_seconds histogram",
      'latency_seconds_bucket{op="commit",le="0.001"} 2',
      'latency_seconds_bucket{op="commit",le="0.01"} 2',
      'latency_seconds_bucket{op="commit",le="0.1"} 5',
      'latency_seconds_bucket{op="commit",le="+Inf"} 6',
      'latency_seconds_sum{op="commit"} 1.25',
      'latency_seconds_count{op="commit"} 6',
      "",
    ].join("\n"),
  );
  const unlabelled = renderExposition([{
    ...metric,
    series: [{ labels: {}, bounds: [1], counts: [0, 0], sum: 0 }],
  }]);
  assert.ok(unlabelled.includes('latency_seconds_bucket{le="+Inf"} 0\nlatency_seconds_sum 0\n'));
  parseExposition(unlabelled);
});

Deno.test("the strict parser refuses what a scraper would", () => {
  const bad = [
    "x 1", // no trailing newline
    '# TYPE x gauge\nx{a="b} 1\n', // unterminated value
    '# TYPE x gauge\nx{a="\\t"} 1\n', // unknown escape
    "# TYPE x gauge\nx one\n", // not a number
    "# TYPE x gauge\nx 1\nx 2\n", // duplicate
    "# TYPE x gauge\ny 1\n", // outside its family
    "# TYPE x counter\nx 1\n", // counter without _total
    "# TYPE x gauge\nx 1\n# TYPE z gauge\nz 1\n# HELP x late\n", // metadata apart
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf
    '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', // count differs
  ];
  for (const text of bad) assert.throws(() => parseExposition(text), SyntaxError, text);
});
