/** The registry: children per label set, values, scrape-time updates, and name checks. */

import assert from "node:assert/strict";
import { renderExposition } from "../../src/metrics/exposition.ts";
import { Registry } from "../../src/metrics/registry.ts";
import { parseExposition, sampleValue } from "../helpers/exposition.ts";

Deno.test("Registry: labelled children are resolved once and count on their own", async () => {
  const r = new Registry();
  const messages = r.counter("msgs_total", "Messages.", ["kind", "content"]);
  const privateText = messages.labels({ kind: "private", content: "text" });
  assert.equal(messages.labels({ content: "text", kind: "private" }), privateText);
  const groupImage = messages.labels({ kind: "group", content: "image" });
  privateText.inc();
  privateText.inc();
  groupImage.inc(5);
  const parsed = parseExposition(renderExposition(await r.collect()));
  assert.equal(sampleValue(parsed, "msgs_total", { kind: "private", content: "text" }), 2);
  assert.equal(sampleValue(parsed, "msgs_total", { kind: "group", content: "image" }), 5);
  assert.throws(() => privateText.inc(-1), RangeError);
  assert.throws(() => messages.labels({ kind: "private" }), TypeError);
  assert.throws(() => messages.labels({ kind: "a", content: "b", extra: "c" }), TypeError);
});

Deno.test("Registry: gauges set at collection time, histograms count into their buckets", async () => {
  const r = new Registry();
  const open = r.gauge("open", "Open things.").labels();
  let source = 7;
  r.beforeCollect(() => open.set(source));
  const h = r.histogram("op_seconds", "Op time.", [0.01, 0.1, 1]).labels();
  for (const v of [0.005, 0.01, 0.05, 2]) h.observe(v);
  let parsed = parseExposition(renderExposition(await r.collect()));
  assert.equal(sampleValue(parsed, "open"), 7);
  assert.equal(sampleValue(parsed, "op_seconds_bucket", { le: "0.01" }), 2, "le is inclusive");
  assert.equal(sampleValue(parsed, "op_seconds_bucket", { le: "0.1" }), 3);
  assert.equal(sampleValue(parsed, "op_seconds_bucket", { le: "1" }), 3);
  assert.equal(sampleValue(parsed, "op_seconds_bucket", { le: "+Inf" }), 4);
  assert.equal(sampleValue(parsed, "op_seconds_count"), 4);
  assert.equal(sampleValue(parsed, "op_seconds_sum"), 0.005 + 0.01 + 0.05 + 2);
  source = 3;
  parsed = parseExposition(renderExposition(await r.collect()));
  assert.equal(sampleValue(parsed, "open"), 3);
  assert.deepEqual([...parsed.keys()], ["open", "op_seconds"], "registration order");
});

Deno.test("Registry refuses bad names, counters without _total, and bad histogram bounds", () => {
  const r = new Registry();
  r.gauge("ok_name", "fine");
  assert.throws(() => r.gauge("ok_name", "again"), TypeError);
  assert.throws(() => r.gauge("9lives", "bad"), TypeError);
  assert.throws(() => r.gauge("bad-name", "bad"), TypeError);
  assert.throws(() => r.counter("requests", "no suffix"), TypeError);
  assert.throws(() => r.gauge("g", "bad label", ["__reserved"]), TypeError);
  assert.throws(() => r.gauge("g", "bad label", ["has space"]), TypeError);
  assert.throws(() => r.histogram("h", "le is taken", [1], ["le"]), TypeError);
  assert.throws(() => r.histogram("h", "descending", [1, 0.5]), RangeError);
  assert.throws(() => r.histogram("h", "none", []), RangeError);
  assert.throws(() => r.histogram("h", "infinite", [1, Infinity]), RangeError);
});
