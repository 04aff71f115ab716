/**
 * The fuzzer (scripts/fuzz.ts) run in-process for a few seconds with a fixed seed: it must find
 * nothing, and every category must have run enough inputs to mean something.
 */

import assert from "node:assert/strict";
import { DECODER_CATEGORIES, fuzz, LIVE_CATEGORIES, replay } from "../../scripts/fuzz.ts";
import { ROOT } from "../helpers/cli.ts";

Deno.test("fuzz() finds no failure in 3 seconds and runs every category (fixed seed)", async () => {
  const report = await fuzz({ seconds: 3, seed: 0x5eed_f022 });
  assert.equal(
    report.failures,
    0,
    `failures:\n${JSON.stringify(report.failure_examples, null, 2)}`,
  );
  for (const category of DECODER_CATEGORIES) {
    const n = report.iterations[category];
    assert.ok(n > 100, `${category} ran only ${n} inputs`);
  }
  for (const category of LIVE_CATEGORIES) {
    const n = report.iterations[category];
    assert.ok(n > 10, `${category} ran only ${n} inputs`);
  }
  // the server's health was checked between inputs, and sealed inputs ran both logged in and
  // anonymous
  assert.ok(report.live.pings > 10, `only ${report.live.pings} health pings`);
  const sealed = Object.keys(report.outcomes.live_sealed);
  assert.ok(sealed.some((o) => o.startsWith("logged in")), sealed.join(", "));
  assert.ok(sealed.some((o) => o.startsWith("anonymous")), sealed.join(", "));
  // the decoders saw both outcomes: values that decode and inputs they reject
  assert.ok(report.outcomes.value["decoded"] > 0 && report.outcomes.value["DecodeError"] > 0);
  assert.ok(report.outcomes.frames["intact"] > 0 && report.outcomes.frames["FrameAuthError"] > 0);
});

Deno.test("replay() rebuilds a decoder input from its seed and iteration", () => {
  for (const category of DECODER_CATEGORIES) {
    const inputs = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const a = replay(category, 1234, i);
      const b = replay(category, 1234, i);
      assert.deepEqual(b, a, `${category} #${i}`);
      assert.equal(a.failure, null, `${category} #${i}: ${a.failure}`);
      inputs.add(a.input.toHex());
    }
    assert.ok(inputs.size > 10, `${category}: only ${inputs.size} distinct inputs in 20`);
    assert.notDeepEqual(replay(category, 1235, 0).input, replay(category, 1234, 0).input);
  }
});

Deno.test("deno run scripts/fuzz.ts --json prints one JSON line and exits 0", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/fuzz.ts", "--seconds", "1", "--seed", "7", "--json"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `exit ${out.code}\n${stdout}\n${stderr}`);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 1, stdout);
  const report = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(report), [
    "seconds",
    "seed",
    "iterations",
    "failures",
    "failure_examples",
  ]);
  assert.equal(report.seed, 7);
  assert.equal(report.failures, 0);
  assert.deepEqual(Object.keys(report.iterations), [...DECODER_CATEGORIES, ...LIVE_CATEGORIES]);
  assert.match(stderr, /seed 7/);
});
