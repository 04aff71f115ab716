/**
 * `deno task bench --compare FILE` (scripts/bench_compare.ts) on small saved outputs: what got
 * slower beyond the noise is named, each figure judged in its own direction, and a change
 * within the repeats' spread or the floor is not.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { betterFor, compareRuns, labelOf, type Line } from "../../scripts/bench_compare.ts";
import { ROOT } from "../helpers/cli.ts";

/** Per-run lines as bench.ts --repeat prints them: one figure per run for each measurement. */
function runs(
  figures: Record<string, { unit: string; values: number[]; p99?: number[]; pairs?: number }>,
): Line[] {
  const out: Line[] = [];
  const n = Object.values(figures)[0].values.length;
  for (let run = 1; run <= n; run++) {
    for (const [scenario, f] of Object.entries(figures)) {
      const line: Line = { scenario, result: f.values[run - 1], unit: f.unit, run };
      if (f.pairs) line.pairs = f.pairs;
      if (f.p99) line.p99_ms = f.p99[run - 1];
      out.push(line);
    }
  }
  return out;
}

const SAVED = runs({
  relay: { unit: "msg/s", values: [100_000, 105_000, 98_000], pairs: 50 },
  latency: { unit: "ms p50", values: [1.0, 1.1, 1.05], p99: [5, 5.5, 5.2] },
  offline: { unit: "s", values: [1.0, 1.02, 0.98] },
  idle: { unit: "bytes RSS/conn", values: [20_000, 20_100, 19_900] },
  fanout: { unit: "deliveries/s", values: [50_000, 45_000, 55_000] },
});

const NOW = runs({
  // 20 % fewer messages a second: slower.
  relay: { unit: "msg/s", values: [80_000, 82_000, 79_000], pairs: 50 },
  // p50 the same; p99 halved: faster.
  latency: { unit: "ms p50", values: [1.02, 1.08, 1.04], p99: [2.5, 2.6, 2.4] },
  // 30 % more seconds to drain: slower (lower is better).
  offline: { unit: "s", values: [1.3, 1.31, 1.29] },
  // 3 % more memory per connection: within the 5 % floor.
  idle: { unit: "bytes RSS/conn", values: [20_600, 20_650, 20_550] },
  // 10 % fewer, but the saved runs spread over 20 %: within the noise.
  fanout: { unit: "deliveries/s", values: [44_000, 45_500, 46_000] },
});

Deno.test("betterFor() knows each figure's direction: rates higher, times and memory lower", () => {
  for (const unit of ["msg/s", "deliveries/s", "logins/s"]) {
    assert.equal(betterFor("result", unit), "higher");
  }
  for (const unit of ["ms p50", "s", "bytes RSS/conn"]) {
    assert.equal(betterFor("result", unit), "lower");
  }
  assert.equal(betterFor("p99_ms", "ms p50"), "lower");
});

Deno.test("compareRuns() names what got slower beyond the noise, in each figure's direction", () => {
  const r = compareRuns(SAVED, NOW);
  assert.deepEqual(r.slower, ["relay pairs=50", "offline"]);
  assert.deepEqual(r.faster, ["latency p99_ms"]);
  assert.equal(r.noise_from_repeats, true);
  const by = (label: string, metric = "result") =>
    r.measurements.find((m) => m.measurement === label && m.metric === metric)!;
  assert.equal(by("relay pairs=50").worse_pct, 20);
  assert.equal(by("relay pairs=50").better, "higher");
  assert.equal(by("offline").better, "lower");
  assert.equal(by("latency").verdict, "same");
  assert.equal(by("idle").verdict, "same");
  assert.equal(by("idle").noise_pct, 5);
  const fanout = by("fanout");
  assert.equal(fanout.verdict, "same");
  assert.equal(fanout.noise_pct, 20); // (55,000 − 45,000) / 50,000
  assert.deepEqual(fanout.saved.runs, [50_000, 45_000, 55_000]);
});

Deno.test("compareRuns() takes the saved spread as noise when it is above the floor, and says when only the floor stood for it", () => {
  // 6 % worse than the saved median, past the floor, but the saved runs reached it: same.
  const saved = runs({ relay: { unit: "msg/s", values: [100, 101, 93] } });
  const now = runs({ relay: { unit: "msg/s", values: [94, 94, 94] } });
  const r = compareRuns(saved, now, 5);
  assert.equal(r.measurements[0].verdict, "same");
  assert.equal(r.measurements[0].noise_pct, 8);
  // Single runs: the floor alone decides, and the result says so.
  const one = compareRuns(
    [{ scenario: "relay", result: 100, unit: "msg/s" }],
    [{ scenario: "relay", result: 90, unit: "msg/s" }],
  );
  assert.deepEqual(one.slower, ["relay"]);
  assert.equal(one.noise_from_repeats, false);
  // A measurement on one side only is reported as missing, not compared.
  const missing = compareRuns(saved, []);
  assert.equal(missing.measurements[0].verdict, "missing");
  assert.deepEqual(missing.slower, []);
});

Deno.test("bench_compare.ts on two saved outputs prints one JSON line and a table, and exits 0", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Saved as bench.ts prints: JSON lines, then the medians and a table for people.
    const asPrinted = (lines: Line[]) =>
      [...lines.map((l) => JSON.stringify(l)), "", "Medians of 3 runs:", "scenario | ..."].join(
        "\n",
      );
    await Deno.writeTextFile(join(dir, "saved.txt"), asPrinted(SAVED));
    await Deno.writeTextFile(join(dir, "now.txt"), asPrinted(NOW));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--quiet", "scripts/bench_compare.ts", "saved.txt", "now.txt"]
        .map((a) => a.endsWith(".txt") ? join(dir, a) : a),
      cwd: ROOT,
      env: { NO_COLOR: "1" },
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const lines = stdout.trim().split("\n");
    assert.equal(lines.length, 1);
    assert.deepEqual(JSON.parse(lines[0]).slower, ["relay pairs=50", "offline"]);
    assert.match(stderr, /^relay pairs=50 +\| msg\/s +\| higher .*\| SLOWER$/m);
    assert.match(stderr, /Slower beyond the noise: relay pairs=50; offline/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench.ts --compare refuses a file it cannot use before it runs anything", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "empty.txt"), "no JSON here\n");
    for (const file of [join(dir, "missing.txt"), join(dir, "empty.txt")]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", "scripts/bench.ts", "--quick", "--compare", file],
        cwd: ROOT,
        env: { NO_COLOR: "1" },
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 2, stderr);
      assert.match(stderr, /^bench: (Cannot read the saved bench output|".*" holds no bench)/);
      assert.doesNotMatch(stderr, /server pid/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compareRuns() compares the server's CPU per operation and the pairs' spread, lower better", () => {
  const line = (run: number, us: number, ratio: number): Line => ({
    scenario: "relay",
    pairs: 500,
    result: 50_000,
    unit: "msg/s",
    server_cpu_us_per_op: us,
    pair_done_ratio: ratio,
    run,
  });
  const saved = [line(1, 10, 2.0), line(2, 10.2, 2.1), line(3, 9.9, 1.9)];
  const now = [line(1, 6, 1.95), line(2, 6.1, 2.0), line(3, 5.9, 2.05)];
  const r = compareRuns(saved, now);
  const by = (metric: string) => r.measurements.find((m) => m.metric === metric)!;
  assert.equal(betterFor("server_cpu_us_per_op", "msg/s"), "lower");
  assert.equal(by("server_cpu_us_per_op").verdict, "faster");
  assert.equal(by("server_cpu_us_per_op").unit, "µs/op");
  assert.deepEqual(by("server_cpu_us_per_op").now.runs, [6, 6.1, 5.9]);
  assert.equal(by("pair_done_ratio").verdict, "same");
  assert.equal(by("result").verdict, "same");
  assert.deepEqual(r.faster, ["relay pairs=500 server_cpu_us_per_op"]);
});

Deno.test("compareRuns() keeps the latency scenario's rates apart, and reads median lines' runs", () => {
  const lat = (rate: number, p99: number, us: number, run?: number): Line => ({
    scenario: "latency",
    pairs: 50,
    rate_per_s: rate,
    result: 1,
    unit: "ms p50",
    p99_ms: p99,
    server_cpu_us_per_op: us,
    ...(run === undefined ? {} : { run }),
  });
  // Per-run lines, saved: three rates, three runs.
  const saved = [1, 2, 3].flatMap((run) => [
    lat(3000, 2, 50, run),
    lat(10_000, 5, 30, run),
    lat(20_000, 10, 20, run),
  ]);
  // A file of median lines alone (as --repeat prints them last), each with its runs' figures:
  // at 20,000/s the p99 doubled; the others did not move.
  const median = (rate: number, p99: number[], us: number[]): Line => ({
    ...lat(rate, p99[1], us[1]),
    median_of: 3,
    p99_ms_runs: p99,
    server_cpu_us_per_op_runs: us,
  });
  const now = [
    median(3000, [2, 2, 2], [50, 50, 50]),
    median(10_000, [5, 5, 5], [30, 30, 30]),
    median(20_000, [20, 21, 19], [20, 20, 20]),
  ];
  const r = compareRuns(saved, now);
  assert.deepEqual(r.slower, ["latency pairs=50 rate_per_s=20000 p99_ms"]);
  const cpu = r.measurements.filter((m) => m.metric === "server_cpu_us_per_op");
  assert.deepEqual(cpu.map((m) => m.measurement), [
    "latency pairs=50 rate_per_s=3000",
    "latency pairs=50 rate_per_s=10000",
    "latency pairs=50 rate_per_s=20000",
  ]);
  assert.ok(cpu.every((m) => m.verdict === "same" && m.now.runs.length === 3));
  // An older output's latency ran at 20 % of each run's relay result: one measurement.
  const old = [1, 2, 3].map((run) => ({
    ...lat(11_000 + run, 5, 40, run),
    rate_source: "20% of relay",
  }));
  const o = compareRuns(old, old);
  assert.deepEqual([...new Set(o.measurements.map((m) => m.measurement))], ["latency pairs=50"]);
});

Deno.test("labelOf() tells the cluster lines apart by store and node count", () => {
  const line = (store: string, nodes: number): Line => ({
    scenario: "cluster_relay",
    store,
    nodes,
    pairs: 50,
  });
  assert.equal(labelOf(line("nats", 3)), "cluster_relay store=nats nodes=3 pairs=50");
  const labels = [line("kv", 1), line("nats", 1), line("nats", 3)].map(labelOf);
  assert.equal(new Set(labels).size, 3);
});
