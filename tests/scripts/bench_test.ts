/**
 * The benchmark (scripts/bench.ts) in its quick mode, as a child process: it must finish, exit 0
 * and print one JSON line with a positive numeric result per scenario. Performance is not asserted.
 */

import assert from "node:assert/strict";
import { ROOT } from "../helpers/cli.ts";
import { natsPresent } from "../helpers/nats.ts";

/** Runs the bench in quick mode with `args`. */
async function bench(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "scripts/bench.ts", "--quick", ...args],
    cwd: ROOT,
    // A pause between the load processes' "go": their counting must not depend on hearing it
    // at the same moment (fan-out's sender would reach the other process's members first).
    env: { NO_COLOR: "1", BENCH_GO_GAP_MS: "300" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** A quick run that must succeed: its JSON lines, and its stderr. */
async function quickBench(
  ...args: string[]
): Promise<{ lines: Record<string, unknown>[]; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await bench(...args);
  assert.equal(code, 0, `exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
  const lines = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  return { lines, stdout, stderr };
}

Deno.test("bench.ts --quick runs relay (after its warm-up), fan-out, offline and logins and prints a result line for each", async () => {
  const { lines } = await quickBench(
    ...["relay", "fanout", "offline", "logins"].flatMap((s) => ["--scenario", s]),
  );
  for (
    const scenario of [
      "relay_warmup",
      "relay",
      "fanout",
      "offline",
      "logins_resume",
      "logins_password",
    ]
  ) {
    const line = lines.find((r) => r.scenario === scenario);
    assert.ok(line, `no JSON line for ${scenario}:\n${JSON.stringify(lines)}`);
    assert.equal(typeof line.result, "number", JSON.stringify(line));
    assert.ok((line.result as number) > 0, JSON.stringify(line));
    assert.equal(typeof line.unit, "string");
  }
  // The relay line's timeline accounts for every message received, half a second at a time.
  const relay = lines.find((r) => r.scenario === "relay")!;
  const perSecond = relay.timeline_msg_per_s as number[];
  assert.ok(perSecond.every((n) => Number.isInteger(n) && n >= 0), JSON.stringify(relay));
  assert.equal(perSecond.reduce((a, n) => a + n / 2, 0), relay.received);
  // The load processes sent some messages first, untimed; only the run's own are counted.
  assert.ok((relay.primed_per_sender as number) > 0, JSON.stringify(relay));
  assert.equal(relay.received, (relay.pairs as number) * (relay.messages_per_sender as number));
  // Every timed line has the server's CPU per operation, all threads and the main one.
  for (const scenario of ["relay", "fanout", "offline", "logins_resume"]) {
    const line = lines.find((r) => r.scenario === scenario)!;
    assert.equal(typeof line.op, "string", JSON.stringify(line));
    for (const k of ["server_cpu_us_per_op", "server_main_cpu_us_per_op"]) {
      assert.ok(typeof line[k] === "number" && line[k] >= 0, `${k}: ${JSON.stringify(line)}`);
    }
  }
  // Every pair is timed, and the unread input was sampled.
  assert.equal(relay.pair_count, relay.pairs);
  assert.equal(relay.pair_without_message, 0);
  const ascending = (...keys: string[]) => {
    const xs = keys.map((k) => relay[k] as number);
    assert.deepEqual([...xs].sort((a, b) => a - b), xs, `${keys}: ${JSON.stringify(relay)}`);
  };
  ascending("pair_first_ms_p50", "pair_first_ms_max", "pair_done_ms_max");
  ascending("pair_done_ms_p50", "pair_done_ms_p90", "pair_done_ms_max");
  const ratio = (relay.pair_done_ms_max as number) / (relay.pair_done_ms_p50 as number);
  assert.ok(Math.abs((relay.pair_done_ratio as number) - ratio) < 0.01, JSON.stringify(relay));
  assert.ok((relay.unread_samples as number) >= 1, JSON.stringify(relay));
  assert.equal(typeof relay.unread_sockets_max, "number");
  // Fan-out is primed too, across both load processes: every member but the sender counts.
  const fanout = lines.find((r) => r.scenario === "fanout")!;
  assert.ok((fanout.primed as number) > 0, JSON.stringify(fanout));
  assert.equal(fanout.received, ((fanout.members as number) - 1) * (fanout.messages as number));
  // Every copy was queued: none skipped for a full queue (SENT's skipped, counted by the sender).
  assert.equal(fanout.skipped_copies, 0, JSON.stringify(fanout));
});

Deno.test("bench.ts --quick runs latency at three fixed rates, each with its tail and the server's CPU per message", async () => {
  const { lines, stdout } = await quickBench("--scenario", "latency");
  const lat = lines.filter((r) => r.scenario === "latency");
  assert.deepEqual(lat.map((r) => r.rate_per_s), [3000, 10_000, 20_000]);
  for (const line of lat) {
    const at = JSON.stringify(line);
    assert.equal(line.outcome, "ok", at);
    assert.ok((line.p50_ms as number) <= (line.p99_ms as number), at);
    assert.ok((line.p99_ms as number) <= (line.max_ms as number), at);
    assert.ok((line.max_ms as number) <= (line.max_ms_with_warmup as number), at);
    assert.equal(line.op, "message");
    assert.ok((line.server_cpu_us_per_op as number) > 0, at);
    // Sent on schedule, give or take the machine's noise.
    const achieved = line.achieved_rate_per_s as number;
    assert.ok(achieved > (line.rate_per_s as number) * 0.8, at);
    assert.ok(achieved < (line.rate_per_s as number) * 1.2, at);
  }
  // The table has a line per rate, with its tail.
  assert.equal([...stdout.matchAll(/^latency .*p50\/p99\/max /gm)].length, 3, stdout);
});

Deno.test("bench.ts --repeat 3 runs on three fresh servers and prints each measurement's median", async () => {
  const { lines, stderr } = await quickBench("--scenario", "offline", "--repeat", "3");
  const runs = lines.filter((l) => l.run !== undefined);
  assert.deepEqual(runs.map((l) => l.run), [1, 2, 3]);
  const [median] = lines.filter((l) => l.median_of !== undefined);
  assert.equal(median.median_of, 3);
  assert.equal(median.scenario, "offline");
  assert.deepEqual(median.result_runs, runs.map((l) => l.result));
  const sorted = runs.map((l) => l.result as number).sort((a, b) => a - b);
  assert.equal(median.result, sorted[1]);
  const pids = [...stderr.matchAll(/server pid (\d+)/g)].map((m) => m[1]);
  assert.equal(new Set(pids).size, 3, stderr);
});

Deno.test("bench.ts refuses an even --repeat, and --repeat with --addr", async () => {
  for (const args of [["--repeat", "2"], ["--repeat", "3", "--addr", "127.0.0.1:1"]]) {
    const { code, stderr } = await bench(...args);
    assert.equal(code, 2, args.join(" "));
    assert.match(stderr, /--repeat/);
  }
});

Deno.test({
  name:
    "bench.ts --cluster --quick relays (full speed and at a fixed rate) on the single server, then across 1 and 3 nodes of a NATS cluster, with each side's CPU per message",
  ignore: !natsPresent,
  fn: async () => {
    const { lines, stderr } = await quickBench("--cluster");
    const relays = lines.filter((r) => r.scenario === "cluster_relay");
    const paced = lines.filter((r) => r.scenario === "cluster_latency");
    for (const runs of [relays, paced]) {
      assert.deepEqual(runs.map((r) => [r.store, r.nodes]), [["kv", 1], ["nats", 1], ["nats", 3]]);
    }
    for (const line of paced) {
      assert.equal(line.unit, "ms p50", JSON.stringify(line));
      assert.equal(line.result, line.p50_ms, JSON.stringify(line));
      assert.ok((line.rate_per_s as number) > 0, JSON.stringify(line));
    }
    for (const line of [...relays, ...paced]) {
      const at = JSON.stringify(line);
      assert.equal(line.outcome, "ok", at);
      assert.ok((line.result as number) > 0, at);
      // Every message sent arrived, and some were measured after the warm-up.
      assert.ok((line.received as number) > 0, at);
      assert.ok((line.p50_ms as number) <= (line.p99_ms as number), at);
      assert.ok((line.server_cpu_us_per_op as number) > 0, at);
      assert.equal((line.node_cpu_pct_each as unknown[]).length, line.nodes, at);
    }
    const [kv, one, three] = relays;
    assert.equal(kv.nats_cpu_us_per_op, 0);
    for (const line of [one, three]) {
      const at = JSON.stringify(line);
      assert.ok((line.nats_cpu_us_per_op as number) > 0, at);
      assert.equal((line.nats_cpu_pct_each as unknown[]).length, 3, at);
      // Each relayed message costs the nodes several NATS publishes and requests.
      assert.ok((line.nats_msgs_sent_per_op as number) >= 3, at);
    }
    assert.equal(three.placement, "sender on node i, receiver on node i+1");
    // Three Parley nodes were started, each with a pid of its own.
    const started = /cluster of 3 Parley node\(s\) \(pids (\d+), (\d+), (\d+),/.exec(stderr);
    assert.ok(started, stderr);
    assert.equal(new Set(started.slice(1)).size, 3);
  },
});

Deno.test("bench.ts refuses --cluster with --addr, a bad --nodes, and --nodes without --cluster", async () => {
  for (
    const args of [
      ["--cluster", "--addr", "127.0.0.1:1"],
      ["--cluster", "--nodes", "0"],
      ["--nodes", "3"],
    ]
  ) {
    const { code, stderr } = await bench(...args);
    assert.equal(code, 2, args.join(" "));
    assert.match(stderr, /cluster|--nodes/);
  }
});
